"""A sketch's structure through a ControlNet add-on (canny edges, tile), on tiny SDXL, FLUX.1,
Qwen-Image and Z-Image."""

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, ImageDraw

from generation.control.sketch import canny_edges, prepare
from generation.devtools.tiny import TINY_BUILDERS, build_tiny_controlnet, build_tiny_zimage
from generation.engine import engine_class
from generation.engine.types import ControlNetSpec, EngineError, GenerationRequest
from generation.models import AddOn, AddOnKind, GenerationJob, ImageModel, JobStatus
from generation.worker import run as worker_run
from tests.pipes import record_argument


def square_sketch(size: int = 128) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(image).rectangle((size // 4, size // 4, 3 * size // 4, 3 * size // 4), outline="black", width=4)
    return image


def draw(engine, **fields) -> np.ndarray:
    images: list = []
    request = GenerationRequest(
        prompt="a square", negative_prompt="", width=64, height=64, steps=3, guidance_scale=3.5, seeds=[2], **fields
    )
    engine.generate(request, max_batch=1, on_step=lambda *_: None, on_images=lambda _, batch: images.extend(batch))
    return np.asarray(images[0], dtype=np.float32)


def test_canny_edges_are_white_lines_on_black_where_the_sketch_has_strokes() -> None:
    edges = np.asarray(canny_edges(square_sketch(64)).convert("L"))
    assert edges.max() == 255 and edges[32, 32] == 0 and edges[2, 2] == 0
    assert (edges > 0).mean() < 0.2
    assert prepare(square_sketch(), "canny", (64, 64)).size == (64, 64)


@pytest.mark.parametrize("family", ["sdxl", "flux", "qwenimage", "zimage"])
def test_a_controlnet_steers_every_step_and_the_base_pipeline_never_holds_it(
    family, tiny_flux_dir, tmp_path: Path
) -> None:
    base = tiny_flux_dir if family == "flux" else TINY_BUILDERS[family](tmp_path / family)
    spec = ControlNetSpec(build_tiny_controlnet(tmp_path / "controlnet", base, family))
    engine = engine_class(family)(base, device="cpu")
    plain, held = draw(engine), engine.memory_bytes
    edges = canny_edges(square_sketch(64))
    asked = GenerationRequest(
        prompt="", negative_prompt="", width=64, height=64, steps=1, guidance_scale=1, seeds=[1], control_image=edges
    )
    assert engine.unread_addons(replace(asked, controlnet=spec)) == [spec.folder]  # before it is read
    steered = draw(engine, control_image=edges, controlnet=spec)
    assert engine.memory_bytes > held and engine.unread_addons(replace(asked, controlnet=spec)) == []  # read once
    assert np.abs(steered - plain).mean() > 0.3
    assert np.abs(draw(engine, control_image=edges, controlnet=spec) - steered).max() == 0  # reproducible
    weaker = draw(engine, control_image=edges, controlnet=spec, control_scale=0.2)
    assert np.abs(weaker - steered).mean() > 0.05
    assert np.abs(draw(engine) - plain).max() == 0  # the next plain job: untouched
    assert len(engine._control_pipes) == 1 and "controlnet" not in engine.pipe.components
    with pytest.raises(EngineError, match="goes with a description alone"):
        draw(engine, control_image=edges, controlnet=spec, init_image=edges, strength=0.5)


# --- the studio's side


@pytest.fixture
def canny_studio(db, tiny_flux_dir: Path) -> ImageModel:
    models = tiny_flux_dir.parent
    if not (models / "tiny-controlnet-flux").exists():
        build_tiny_controlnet(models / "tiny-controlnet-flux", tiny_flux_dir, "flux")
    AddOn.objects.create(
        key="tiny-canny",
        name="Tiny canny ControlNet",
        kind=AddOnKind.CONTROLNET,
        control_type="canny",
        family="flux",
        local_path="tiny-controlnet-flux",
        license_name="test",
        commercial_use=True,
    )
    return ImageModel.objects.get(key="tiny-flux")


def upload(image: Image.Image, name: str = "square.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.mark.django_db
def test_a_canny_sketch_job_runs_through_the_add_on_and_the_box_previews_its_edges(
    alice_client, preset, canny_studio
) -> None:
    form = alice_client.get(reverse("studio")).content.decode()
    assert 'value="canny"' in form and 'value="tile"' not in form  # only what an add-on offers
    data = {"preset": "test-icon", "prompt": "a square", "model": "tiny-flux", "quality": "standard", "variations": "1"}
    response = alice_client.post(
        reverse("studio"), data | {"sketch": upload(square_sketch()), "sketch_mode": "canny"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    job = GenerationJob.objects.get()
    assert job.params["control"]["key"] == "tiny-canny" and job.params["control"]["scale"] == 1.0
    assert "init_image" not in job.params
    assert "its canny through Tiny canny ControlNet (scale 1.0)" in response.content.decode()
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE, job.error
    preview = alice_client.get(reverse("input-prepared", args=[job.params["sketch"]["input"]]), {"mode": "canny"})
    edges = np.asarray(Image.open(io.BytesIO(preview.content)).convert("L"))
    assert edges[128, 128] == 0 and edges.max() == 255  # the edges, not the upload


@pytest.mark.django_db
def test_a_model_without_the_controlnet_is_refused_naming_those_that_can(alice_client, preset, canny_studio) -> None:
    ImageModel.objects.filter(key="hidream-i1-fast").update(enabled=True)
    data = {
        "preset": "test-icon",
        "prompt": "a square",
        "model": "hidream-i1-fast",
        "quality": "standard",
        "variations": "1",
    }
    response = alice_client.post(
        reverse("studio"), data | {"sketch": upload(square_sketch()), "sketch_mode": "canny"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 422 and "cannot follow a sketch&#x27;s canny (no ControlNet for it)" in body
    assert not GenerationJob.objects.exists()


@pytest.mark.django_db
def test_a_controlnet_is_checked_when_an_admin_saves_it(canny_studio, tiny_flux_dir, tmp_path) -> None:
    addon = AddOn.objects.get()
    addon.full_clean()
    addon.family = "sdxl"
    with pytest.raises(ValidationError, match="holds a FluxControlNetModel"):
        addon.full_clean()
    addon.family, addon.control_type = "flux", ""
    with pytest.raises(ValidationError, match="control type"):
        addon.full_clean()
    addon.family, addon.control_type = "hidream", "canny"
    with pytest.raises(ValidationError, match="takes no ControlNet"):
        addon.full_clean()


@pytest.mark.django_db
def test_a_controlnet_made_for_another_size_of_model_is_not_offered_to_it(canny_studio, tmp_path, settings) -> None:
    """The demo model and tiny FLUX are one family of two sizes: the add-on fits only one."""
    from generation.control.addons import control_addon

    other = ImageModel.objects.create(
        key="other-flux",
        name="Other FLUX",
        family="flux",
        local_path="other-flux",
        license_name="t",
        commercial_use=True,
    )
    folder = Path(settings.STUDIO_MODELS_DIR) / "other-flux" / "transformer"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"joint_attention_dim": 4096}')
    assert control_addon(canny_studio, "canny") is not None and control_addon(other, "canny") is None


@pytest.mark.django_db
def test_a_z_image_controlnet_is_checked_against_the_installed_z_image_models(settings) -> None:
    models = Path(settings.STUDIO_MODELS_DIR)
    if not (models / "tiny-zimage").exists():
        build_tiny_zimage(models / "tiny-zimage")
    build_tiny_controlnet(models / "tiny-zimage-canny", models / "tiny-zimage", "zimage")
    ImageModel.objects.create(
        key="tiny-zimage", name="Tiny Z", family="zimage", local_path="tiny-zimage", license_name="t", commercial_use=1
    )
    addon = AddOn(
        key="z-canny",
        name="Z canny",
        kind=AddOnKind.CONTROLNET,
        control_type="canny",
        family="zimage",
        local_path="tiny-zimage-canny",
        license_name="Apache-2.0",
        commercial_use=True,
    )
    addon.full_clean()
    config = models / "tiny-zimage-canny" / "config.json"
    config.write_text(config.read_text().replace('"dim": 32', '"dim": 64'))
    with pytest.raises(ValidationError, match="Its dim is 64; Tiny Z's is 32"):
        addon.full_clean()


def test_canny_edges_are_found_at_the_size_the_model_draws(tiny_flux_dir, tmp_path, monkeypatch) -> None:
    """A small model renders smaller than the job: the sketch is shrunk first and its edges found
    after, so they stay full-strength lines (edges found at the job's size would fade to grey)."""
    spec = ControlNetSpec(build_tiny_controlnet(tmp_path / "controlnet", tiny_flux_dir, "flux"))
    engine = engine_class("flux")(tiny_flux_dir, device="cpu", options={"native_size": 64})
    seen = record_argument(monkeypatch, type(engine._control_pipe(spec)), "control_image")
    request = GenerationRequest(
        prompt="a square",
        negative_prompt="",
        width=512,
        height=512,
        steps=1,
        guidance_scale=3.5,
        seeds=[1],
        control_image=square_sketch(512),
        control_edges="canny",
        controlnet=spec,
    )
    engine.generate(request, max_batch=1, on_step=lambda *_: None, on_images=lambda *_: None)
    edges = np.asarray(seen[0].convert("L"))
    assert seen[0].size == (64, 64) and edges.max() == 255 and edges[32, 32] == 0 and (edges > 0).mean() < 0.3


def test_the_demo_controlnets_sketches_are_edges_of_the_glyphs_outline() -> None:
    import random

    from generation.devtools.demo_controlnet import control_image

    glyph = Image.new("RGB", (256, 256), (245, 245, 240))
    ImageDraw.Draw(glyph).ellipse((64, 64, 192, 192), fill=(30, 90, 200))
    for seed in range(3):  # a pen sketch of its outline, or the glyph itself: edges where the outline is
        edges = np.asarray(control_image(glyph, random.Random(seed)).convert("L"))
        assert edges.shape == (64, 64) and edges[32, 32] == 0 and edges[:, :10].max() == 0 and edges[32].max() == 255
