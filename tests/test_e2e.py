"""End to end: real worker processes against real Redis + Postgres, and the embedded launcher.

These start `celery worker` processes (and, for the embedded size, `manage.py studio`) exactly
as the README does, so they take a few seconds each.
"""

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from generation.devtools.demo_kit import BACKGROUND, card_references, judge_glyph, read_kit_card
from generation.models import GenerationJob, ImageModel, JobStatus
from tests.factories import AssetPresetFactory
from tests.processes import ROOT, base_env, ended, flush_broker, free_port, wait_for, worker, worker_env

# serialized_rollback: each test gets back the presets and models the migrations seeded.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def empty_queue() -> None:
    flush_broker()


def submit(client, preset_slug: str, **data) -> GenerationJob:
    payload = {"preset": preset_slug, "prompt": "a flat blue circle", "quality": "standard", "variations": "4"}
    payload.update(data)
    response = client.post(reverse("studio"), payload, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content
    return GenerationJob.objects.latest("created_at")


def test_a_job_from_the_web_view_is_rendered_by_a_real_worker(alice_client, preset, tmp_path: Path) -> None:
    with worker(worker_env(tmp_path), tmp_path / "worker.log") as w:
        job = submit(alice_client, preset.slug, seed="77", size="128x64")
        job = wait_for(lambda: ended(job), timeout=60, what="the job")
        assert job.status == JobStatus.COMPLETE, (job.error, w.output()[-3000:])
    images = list(job.images.all())
    assert [img.seed for img in images] == [77, 78, 79, 80]
    for img in images:
        with default_storage.open(img.file.name) as fh:
            assert Image.open(fh).size == (128, 64) == (img.width, img.height)
    # The grid the designer sees is what the worker stored.
    response = alice_client.get(job.get_absolute_url(), HTTP_HX_REQUEST="true")
    assert response.status_code == 286 and response.content.decode().count("<figure>") == 4


def test_a_real_worker_stores_a_webp_thumbnail_that_the_grid_loads(alice_client, tmp_path: Path) -> None:
    wide = AssetPresetFactory(slug="wide", default_width=768, default_height=512, allowed_sizes=[[768, 512]], steps=2)
    with worker(worker_env(tmp_path), tmp_path / "worker.log") as w:
        job = submit(alice_client, wide.slug, variations="1")
        job = wait_for(lambda: ended(job), timeout=60, what="the job")
        assert job.status == JobStatus.COMPLETE, (job.error, w.output()[-3000:])
    image = job.images.get()
    with default_storage.open(image.thumbnail.name) as fh:
        thumbnail = Image.open(fh)
        assert thumbnail.format == "WEBP" and thumbnail.size == (384, 256)
    thumbnail_url = reverse("image-thumbnail", args=[image.pk])
    assert f'src="{thumbnail_url}?v=' in alice_client.get(job.get_absolute_url()).content.decode()
    response = alice_client.get(thumbnail_url)
    assert response["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).size == (384, 256)


@pytest.fixture
def slow_preset(db):
    """About 10 s of work on 2 cores, long enough to kill a worker in the middle."""
    return AssetPresetFactory(slug="slow", default_width=512, default_height=512, allowed_sizes=[[512, 512]], steps=80)


def test_a_killed_pool_process_is_replaced_and_the_job_completes(alice_client, slow_preset, tmp_path: Path) -> None:
    with worker(worker_env(tmp_path), tmp_path / "worker.log") as w:
        job = submit(alice_client, slow_preset.slug, variations="2")
        wait_for(
            lambda: GenerationJob.objects.filter(pk=job.pk, progress_step__gte=2).first(), timeout=60, what="steps"
        )
        job.refresh_from_db()
        killed_at = time.monotonic()
        os.kill(job.worker_pid, signal.SIGKILL)  # the prefork child running the job
        job = wait_for(lambda: ended(job), timeout=90, what="the job to finish after the kill")
        recovery = time.monotonic() - killed_at
        assert job.status == JobStatus.COMPLETE, (job.error, w.output()[-3000:])
    assert job.attempts == 2 and job.images.count() == 2
    print(f"\npool process killed: job completed {recovery:.1f} s later")


def test_a_job_on_a_worker_killed_whole_is_taken_over_by_another_worker(
    alice_client, slow_preset, tmp_path: Path
) -> None:
    fast_reaper = {"STUDIO_STALE_AFTER_SECONDS": "6", "STUDIO_REAPER_SECONDS": "2", "STUDIO_HEARTBEAT_SECONDS": "1"}
    first = worker(worker_env(tmp_path, **fast_reaper), tmp_path / "first.log", name="gpu@first")
    w1 = first.__enter__()
    job = submit(alice_client, slow_preset.slug, variations="2")
    wait_for(lambda: GenerationJob.objects.filter(pk=job.pk, progress_step__gte=2).first(), timeout=60, what="steps")
    killed_at = time.monotonic()
    w1.kill()  # kill -9 main process and pool: nothing can ack, reject or clean up
    first.__exit__(None, None, None)
    with worker(worker_env(tmp_path, **fast_reaper), tmp_path / "second.log", name="gpu@second", beat=True) as w2:
        job = wait_for(lambda: ended(job), timeout=120, what="the reaper and the second worker")
        recovery = time.monotonic() - killed_at
        assert job.status == JobStatus.COMPLETE, (job.error, w2.output()[-3000:])
    assert job.worker == "gpu@second" and job.attempts == 2 and job.images.count() == 2
    print(f"\nwhole worker killed: job completed on another worker {recovery:.1f} s later")


def login(client: httpx.Client, username: str, password: str) -> str:
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get("/accounts/login/").text)
    response = client.post(
        "/accounts/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
    )
    assert response.url.path == "/", response.text[:500]
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text).group(1)


def test_the_embedded_studio_runs_end_to_end_without_redis_or_postgres(tmp_path: Path, tiny_flux_dir: Path) -> None:
    """`./studio up`'s launcher: SQLite, local media, the filesystem broker, web + worker."""
    port = free_port()
    env = base_env(
        DJANGO_SETTINGS_MODULE="brandstudio.settings",
        SECRET_KEY="e2e",
        SECURE_COOKIES="0",
        STUDIO_VAR_DIR=str(tmp_path / "var"),
        STUDIO_PASSWORD="embedded-pass",
    )
    log = tmp_path / "studio.log"
    launcher = subprocess.Popen(
        [sys.executable, "manage.py", "studio", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: " ready." in log.read_text(errors="replace"), timeout=120, what="the embedded studio")
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=True, timeout=10)
        wait_for(lambda: client.get("/accounts/login/").status_code == 200, timeout=30, what="the web server")
        token = login(client, "designer", "embedded-pass")
        started = time.monotonic()
        response = client.post(
            "/",
            headers={"HX-Request": "true"},
            data={
                "preset": "icon",
                "prompt": "a flat blue shield icon",
                "quality": "draft",
                "variations": "4",
                "size": "256x256",
                "csrfmiddlewaretoken": token,
            },
        )
        job_url = "/jobs/" + re.search(r'id="job-([0-9a-f-]+)"', response.text).group(1) + "/"
        statuses = []

        def poll() -> httpx.Response | None:
            r = client.get(job_url, headers={"HX-Request": "true"})
            statuses.append(re.search(r'role="status">(\w+)', r.text).group(1))
            return r if r.status_code == 286 else None

        final = wait_for(poll, timeout=90, what="the embedded job", interval=0.5)
        elapsed = time.monotonic() - started
        assert "Complete" in final.text, (final.text[-2000:], log.read_text()[-3000:])
        seeds = re.findall(r"seed (\d+) ·", final.text)
        assert len(set(seeds)) == 4
        # The grid shows thumbnails; the PNG links give the full images judged here.
        assert len(re.findall(r'<img src="/images/[0-9a-f-]+/thumbnail/\?v=[0-9a-f]{8}"', final.text)) == 4
        image_urls = re.findall(r'href="(/images/[0-9a-f-]+/file/)\?download=1" download>PNG', final.text)
        assert len(image_urls) == 4
        verdicts = []
        references = card_references(read_kit_card(ROOT / "demo" / "brand-model"))
        for url in image_urls:
            image = Image.open(io.BytesIO(client.get(url).content))
            assert image.size == (256, 256)
            # Judged as a designer sees it: the cut-out icon on the brand background (dropping the
            # alpha instead would make every faint edge pixel solid, its colour un-premultiplied).
            shown = Image.new("RGBA", image.size, BACKGROUND)
            shown.alpha_composite(image.convert("RGBA"))
            verdicts.append(judge_glyph(shown.convert("RGB"), references))
        # The default demo brand model draws what was asked (the shield glyph), in the brand colour.
        assert [v.colour for v in verdicts] == ["blue"] * 4, verdicts
        assert sum(v.nearest == "shield" for v in verdicts) >= 3, [v.nearest for v in verdicts]
        assert "Processing" in statuses or "Queued" in statuses
        print(f"\nembedded studio: 4 draft icons at 256x256 in {elapsed:.1f} s")
    finally:
        os.killpg(launcher.pid, signal.SIGTERM)
        launcher.wait(timeout=40)


def test_a_lora_trained_by_a_real_worker_is_used_by_the_next_job(alice_client, alice, tmp_path: Path, settings) -> None:
    """Upload a set, train on the `training` queue, pick the new version in the studio, render."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from generation.devtools.demo_kit import PALETTE, SHAPES, caption, draw_icon
    from generation.models import AssetPreset, BrandLora, TrainingRun, TrainingSet

    settings.STUDIO_LORA_ROOT = tmp_path / "loras"
    staff = alice
    staff.is_staff = True
    staff.save()
    icon = AssetPreset.objects.get(slug="icon")
    training_set = TrainingSet.objects.create(name="Icons", preset=icon, family="flux", trigger_word="bsicon")
    files = []
    for n in range(24):
        colour, shape = list(PALETTE)[n % 4], SHAPES[n % 6]
        buffer = io.BytesIO()
        draw_icon(colour, shape, size=64).save(buffer, format="PNG")
        files.append(SimpleUploadedFile(f"{n}.png", buffer.getvalue()))
    alice_client.post(training_set.get_absolute_url(), {"files": files})
    for n, image in enumerate(training_set.images.order_by("pk")):
        image.caption = caption(list(PALETTE)[n % 4], SHAPES[n % 6]) + " on a light grey background"
        image.save()
    model = ImageModel.objects.get(key="tiny-flux")
    form = {"model": model.pk, "steps": "6", "resolution": "64", "batch_size": "2", "sample_every": "3"}
    response = alice_client.post(training_set.get_absolute_url(), form)
    assert response.status_code == 302, response.content.decode()[-2000:]
    run = TrainingRun.objects.get()
    env = worker_env(tmp_path, STUDIO_LORA_ROOT=str(tmp_path / "loras"))
    with worker(env, tmp_path / "worker.log") as w:
        run = wait_for(
            lambda: TrainingRun.objects.filter(pk=run.pk, status__in=["complete", "failed"]).first(),
            timeout=120,
            what="the training run",
        )
        assert run.status == "complete", (run.error, w.output()[-3000:])
        lora = BrandLora.objects.get()
        assert (tmp_path / "loras" / lora.file).is_file() and lora.version == 1
        page = alice_client.get("/?preset=icon").content.decode()
        assert f'value="{lora.pk}"' in page  # selectable in the studio
        job = submit(
            alice_client,
            "icon",
            model="tiny-flux",
            brand_lora=str(lora.pk),
            quality="draft",
            variations="2",
            size="512x512",
        )
        job = wait_for(lambda: ended(job), timeout=60, what="the job with the new LoRA")
        assert job.status == JobStatus.COMPLETE, (job.error, w.output()[-3000:])
    assert job.params["loras"][0]["path"] == lora.file and job.params["prompt"].startswith("bsicon, ")
