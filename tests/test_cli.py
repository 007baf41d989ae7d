"""The `brandstudio` command against the live server (and, end to end, a real worker)."""

import json
import zipfile
from pathlib import Path

import pytest
import redis
from brandstudio_cli.main import cli, read_descriptions
from click.testing import CliRunner
from django.conf import settings
from PIL import Image

from generation.models import GenerationJob
from generation.tokens import token_create
from tests.processes import worker, worker_env
from tests.test_workflow import finished_job

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def run(live_server, alice, tmp_path, monkeypatch):
    """Runs the CLI configured for alice on the live server; returns click's result."""
    monkeypatch.setenv("BRANDSTUDIO_CONFIG", str(tmp_path / "config.json"))
    token = token_create(user=alice, name="cli")[1]
    runner = CliRunner()

    def invoke(*args: str, token: str = token, server: str = live_server.url):
        return runner.invoke(cli, ["--server", server, "--token", token, *args], catch_exceptions=False)

    invoke.token = token  # type: ignore[attr-defined]
    return invoke


def test_configure_checks_the_token_and_saves_it(live_server, alice, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BRANDSTUDIO_CONFIG", str(tmp_path / "config.json"))
    token = token_create(user=alice, name="cli")[1]
    result = CliRunner().invoke(cli, ["configure", "--server", live_server.url, "--token", token])
    assert result.exit_code == 0 and "model(s)" in result.output
    assert json.loads((tmp_path / "config.json").read_text()) == {"server": live_server.url, "token": token}
    assert (tmp_path / "config.json").stat().st_mode & 0o077 == 0
    listed = CliRunner().invoke(cli, ["models"])  # from the saved configuration
    assert listed.exit_code == 0 and "tiny-flux" in listed.output


def test_exit_codes_a_script_can_rely_on(run, live_server, tmp_path, monkeypatch, preset) -> None:
    monkeypatch.delenv("BRANDSTUDIO_SERVER", raising=False)
    unconfigured = CliRunner().invoke(cli, ["models"])
    assert unconfigured.exit_code == 3 and "Not configured" in unconfigured.output
    assert run("models", token="bst_wrong").exit_code == 3
    refused = run("generate", "a key", "--asset-type", "poster")
    assert refused.exit_code == 4 and "asset_type: Pick one of the available asset types." in refused.output
    assert run("download", "00000000-0000-0000-0000-000000000000").exit_code == 5
    assert run("models", server="http://127.0.0.1:9").exit_code == 6
    assert not GenerationJob.objects.exists()


def test_history_and_favorites(run, alice) -> None:
    job = finished_job(alice, prompt="a lighthouse")
    image = job.images.first()
    result = run("history", "--q", "lighthouse")
    assert result.exit_code == 0 and str(job.id) in result.output
    assert run("favorites", "add", str(image.id)).exit_code == 0
    assert str(image.id) in run("favorites", "list").output
    assert run("favorites", "remove", str(image.id)).exit_code == 0
    assert str(image.id) not in run("favorites", "list").output


def test_descriptions_come_from_lines_or_a_csv_column() -> None:
    assert read_descriptions("a key\n\n# note\na map\n") == ["a key", "a map"]
    assert read_descriptions("id,prompt\n1,a key\n2,a map\n") == ["a key", "a map"]


@pytest.mark.e2e
def test_generate_follows_progress_and_saves_the_images(run, preset, tmp_path) -> None:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    out = tmp_path / "out"
    (tmp_path / "prompts.txt").write_text("a paper plane\na key\n")
    with worker(worker_env(tmp_path), tmp_path / "worker.log") as w:
        result = run("generate", "a flat blue circle", "-a", preset.slug, "-n", "2", "--seed", "5", "-o", str(out))
        assert result.exit_code == 0, (result.output, w.output()[-2000:])
        saved = [Path(line) for line in result.output.split() if line.endswith(".png")]
        assert [p.name for p in saved] == [f"{preset.slug}-a-flat-blue-circle-seed{s}.png" for s in (5, 6)]
        assert all(Image.open(p).size == (64, 64) for p in saved)
        batch = run("batch", str(tmp_path / "prompts.txt"), "-a", preset.slug, "-n", "1", "-o", str(out / "batch"))
        assert batch.exit_code == 0 and len(list((out / "batch").glob("*.png"))) == 2
    job = GenerationJob.objects.get(prompt="a flat blue circle")
    zipped = run("download", str(job.id), "--zip", "-o", str(out))
    assert zipped.exit_code == 0 and len(zipfile.ZipFile(zipped.output.strip()).namelist()) == 2


# --- finishing: SVG and WebP downloads, compliance in the listings


def icon_job(owner, *, traced: list[bool]):
    from tests.factories import FinishedJobFactory, GeneratedImageFactory

    job = FinishedJobFactory(owner=owner, prompt="a key", images_total=len(traced))
    for index, svg in enumerate(traced):
        GeneratedImageFactory(job=job, index=index, seed=7 + index, traced=svg)
    return job


def test_download_as_svg_saves_the_traced_images_and_skips_the_others_saying_so(run, alice, tmp_path) -> None:
    job = icon_job(alice, traced=[True, False])
    result = run("download", str(job.id), "--format", "svg", "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    [saved] = [Path(line) for line in result.stdout.split() if line.endswith(".svg")]
    assert saved.name == f"{job.preset.slug}-a-key-seed7.svg" and saved.read_text().startswith("<svg")
    assert "Skipped seed 8:" in result.stderr and "not traced to SVG" in result.stderr


def test_download_as_svg_fails_when_no_image_has_one(run, alice, tmp_path) -> None:
    job = icon_job(alice, traced=[False, False])
    result = run("download", str(job.id), "--format", "svg", "-o", str(tmp_path))
    assert result.exit_code == 5 and "None of the 2 image(s) could be downloaded as SVG." in result.output
    assert not list(tmp_path.glob("*.svg"))


def test_download_as_webp_keeps_the_alpha(run, alice, tmp_path) -> None:
    job = icon_job(alice, traced=[True])
    result = run("download", str(job.id), "--format", "webp", "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    [saved] = tmp_path.glob("*.webp")
    assert Image.open(saved).mode == "RGBA"


def test_history_and_favorites_show_how_on_brand_the_images_are(run, alice) -> None:
    job = icon_job(alice, traced=[True, False])
    job.images.filter(index=1).update(compliance_after=0.62)
    assert "on-brand 62-99%" in run("history").stdout
    assert "on-brand 62-99%" not in run("history", "--min-compliance", "0.995").stdout
    assert run("history", "--min-compliance", "2").exit_code == 2  # click refuses it before the studio does
    run("favorites", "add", str(job.images.get(index=1).id))
    assert "on-brand 62% (below 90%)" in run("favorites", "list").stdout


def test_generate_with_a_sketch_uploads_it_once_and_the_job_starts_from_it(run, preset, tmp_path) -> None:
    from generation.models import InputImage
    from tests.control.test_sketch import star_sketch

    drawing = tmp_path / "star.png"
    drawing.write_bytes(star_sketch())
    for _ in range(2):
        result = run(
            "generate", "a star", "-a", preset.slug, "--sketch", str(drawing), "--follow", "loose", "--no-wait"
        )
        assert result.exit_code == 0, result.output
    job = GenerationJob.objects.get(pk=result.output.strip())
    assert InputImage.objects.count() == 1 and job.params["sketch"]["follow"] == "loose"
    (tmp_path / "notes.txt").write_text("not a drawing")
    refused = run("generate", "a star", "-a", preset.slug, "--sketch", str(tmp_path / "notes.txt"))
    assert refused.exit_code == 4 and "file: notes.txt: not a PNG, JPEG or WebP image" in refused.output


def test_inpaint_uploads_the_mask_and_names_the_image(run, alice, preset, tmp_path) -> None:
    from tests.control.test_inpaint import mask_png

    image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
    (tmp_path / "mask.png").write_bytes(mask_png().read())
    result = run("inpaint", str(image.pk), "--mask", str(tmp_path / "mask.png"), "-d", "a red dot", "--no-wait")
    assert result.exit_code == 0, result.output
    job = GenerationJob.objects.get(pk=result.output.strip())
    assert job.params["inpaint"]["of"] == str(image.pk) and job.prompt == "a red dot"
    (tmp_path / "empty.png").write_bytes(mask_png(box=None).read())
    refused = run("inpaint", str(image.pk), "--mask", str(tmp_path / "empty.png"))
    assert refused.exit_code == 4 and "mask: The mask paints nothing" in refused.output


def test_outpaint_extends_the_canvas_and_says_when_nothing_is_added(run, alice, preset) -> None:
    image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
    result = run("outpaint", str(image.pk), "--left", "25", "--right", "25", "--no-wait")
    assert result.exit_code == 0, result.output
    job = GenerationJob.objects.get(pk=result.output.strip())
    assert job.params["width"] > image.job.params["width"] and job.source_image == image
    refused = run("outpaint", str(image.pk))
    assert refused.exit_code == 4 and "Extend at least one side" in refused.output


def test_generate_with_references_uploads_each_and_names_them(run, preset, tmp_path, monkeypatch) -> None:
    files = []
    for colour in ("red", "blue"):
        Image.new("RGB", (32, 32), colour).save(tmp_path / f"{colour}.png")
        files += ["--reference", str(tmp_path / f"{colour}.png")]
    refused = run("generate", "a star", "-a", preset.slug, *files)  # tiny-flux has no IP-Adapter
    assert refused.exit_code == 4 and "cannot take style references" in refused.output
    from generation.models import InputImage

    assert InputImage.objects.count() == 2  # uploaded: the next try with another model sends the same ids


def test_edit_sends_the_instruction_and_says_when_nothing_can_edit(run, alice, preset) -> None:
    image = finished_job(alice, preset=preset).images.first()
    refused = run("edit", str(image.pk), "make the background blue")
    assert refused.exit_code == 4 and "No model here can follow an edit instruction" in refused.output
    assert GenerationJob.objects.count() == 1


def test_history_ends_with_its_page_line_on_a_line_of_its_own(run, alice) -> None:
    for n in range(3):
        finished_job(alice, prompt=f"a gear for the settings page {n}")
    result = run("history")
    assert result.stdout.endswith("a gear for the settings page 0\n\npage 1 of 1 (3 jobs)\n") and not result.stderr
    assert json.loads(run("history", "--json").stdout)["count"] == 3
