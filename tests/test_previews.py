"""Live previews drawn by real engines: latents unpacked as each pipeline does, colours fitted on the
model's own VAE, stored by the runner while the job runs and gone when it ends."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from django.conf import settings
from PIL import Image

from generation import runner
from generation.engine import engine_class
from generation.engine.base import DiffusersEngine
from generation.engine.tiny import TINY_BUILDERS
from generation.engine.types import GenerationRequest
from generation.models import GenerationJob, ImagePreview, JobStatus
from tests.factories import GenerationJobFactory

DEMO = Path(settings.STUDIO_DEMO_MODEL_DIR)


def request(**overrides) -> GenerationRequest:
    values = {"prompt": "a flat orange star icon", "negative_prompt": "", "width": 64, "height": 64}
    values |= {"steps": 3, "guidance_scale": 3.5, "seeds": [1, 2]}
    return GenerationRequest(**(values | overrides))


def decode_inputs_and_previews(engine: DiffusersEngine, req: GenerationRequest):
    """What the pipeline hands its VAE after the last step, and what the preview code makes of
    the last step's latents: the same tensor when the latents are unpacked and scaled right."""
    vae = engine.pipe.vae
    decoded: list[torch.Tensor] = []
    real_decode = vae.decode

    def recording_decode(latents, *args, **kwargs):
        decoded.append(latents.detach().clone())
        return real_decode(latents, *args, **kwargs)

    seen: list[torch.Tensor] = []
    real_preview_latents = engine.preview_latents

    def recording_preview_latents(pipe, latents, width, height):
        seen.append(real_preview_latents(pipe, latents, width, height))
        return seen[-1]

    drawn: list[list[Image.Image]] = []
    vae.decode = recording_decode
    engine.preview_latents = recording_preview_latents  # type: ignore[method-assign]
    try:
        engine.generate(
            req,
            max_batch=8,
            on_step=lambda s, t: None,
            on_images=lambda f, i: None,
            on_preview=lambda first, draw: drawn.append(draw()),
        )
    finally:
        del vae.decode
        del engine.preview_latents
    return decoded[-1], seen[-1], drawn


@pytest.mark.parametrize("family", sorted(TINY_BUILDERS))
def test_each_family_unpacks_its_latents_as_its_pipeline_does_before_decoding(family, tmp_path) -> None:
    engine = engine_class(family)(TINY_BUILDERS[family](tmp_path / family), device="cpu")
    req = request(width=128, height=64) if family != "hidream" else request()
    decoded, previewed, drawn = decode_inputs_and_previews(engine, req)
    if decoded.dim() == 5:  # Qwen-Image's video VAE decodes clips of one frame
        decoded = decoded[:, :, 0]
    assert previewed.shape == decoded.shape
    assert torch.allclose(previewed.float(), decoded.float(), atol=1e-4)
    assert len(drawn) == req.steps and all(len(batch) == 2 for batch in drawn)
    assert drawn[0][0].size == (req.width, req.height)  # small sizes are kept; large ones shrink to 128 px


def test_a_preview_of_the_last_step_looks_like_the_image_it_becomes() -> None:
    """On the demo model (a trained VAE) the fitted colours are close to what the VAE decodes."""
    engine = engine_class("flux")(DEMO, device="cpu", options={"native_size": 64, "max_sequence_length": 32})
    req = request(steps=12, seeds=[3])
    finals: list[Image.Image] = []
    drawn: list[list[Image.Image]] = []
    engine.generate(
        req,
        max_batch=1,
        on_step=lambda s, t: None,
        on_images=lambda f, images: finals.extend(images),
        on_preview=lambda first, draw: drawn.append(draw()),
    )
    final = np.asarray(finals[0].convert("RGB"), dtype=float)
    preview = np.asarray(drawn[-1][0].resize(finals[0].size), dtype=float)
    noise = np.asarray(drawn[0][0].resize(finals[0].size), dtype=float)
    assert np.abs(preview - final).mean() < 30  # of 255: the same picture, blurred
    assert np.abs(preview - final).mean() < np.abs(noise - final).mean()  # and it took shape on the way


def test_a_large_image_gets_a_small_preview(tiny_flux_dir) -> None:
    engine = engine_class("flux")(tiny_flux_dir, device="cpu")
    drawn: list[list[Image.Image]] = []
    engine.generate(
        request(width=512, height=256, steps=1, seeds=[1]),
        max_batch=1,
        on_step=lambda s, t: None,
        on_images=lambda f, i: None,
        on_preview=lambda first, draw: drawn.append(draw()),
    )
    assert drawn[0][0].size == (128, 64)


def test_without_a_preview_callback_nothing_is_fitted_or_drawn(tiny_flux_dir) -> None:
    engine = engine_class("flux")(tiny_flux_dir, device="cpu")
    engine.generate(request(), max_batch=2, on_step=lambda s, t: None, on_images=lambda f, i: None)
    assert engine._previewer_fitted is False


@pytest.mark.django_db
def test_the_runner_stores_previews_while_the_job_runs_and_removes_them_after(settings, monkeypatch) -> None:
    settings.STUDIO_PREVIEW_SECONDS = 1e-6  # every step
    job = GenerationJobFactory(images_total=2)
    job.params["steps"] = 6
    job.save()
    seen: list[tuple[int, int, int, tuple[int, int]]] = []
    real_on_preview = runner.Progress.on_preview

    def on_preview_then_look(self, first, draw):
        real_on_preview(self, first, draw)
        if self.step == self.total:
            return  # the last step makes no preview: the image itself comes next
        progress = GenerationJob.objects.get(pk=job.pk).progress_step
        for row in ImagePreview.objects.filter(job=job):
            seen.append((row.index, row.step, progress, Image.open(io.BytesIO(bytes(row.webp))).size))

    monkeypatch.setattr(runner.Progress, "on_preview", on_preview_then_look)
    runner.run_job(str(job.pk), worker="test@host")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE
    assert {index for index, *_ in seen} == {0, 1} and {size for *_, size in seen} == {(64, 64)}
    # the step of the newest preview is on the job row with it (so the live channel's stamp moves)
    assert {step for _, step, _, _ in seen} == {1, 2, 3, 4, 5}
    assert all(step == progress for _, step, progress, _ in seen)
    assert not ImagePreview.objects.exists()


@pytest.mark.django_db
def test_previews_are_off_with_a_zero_interval(settings, monkeypatch) -> None:
    settings.STUDIO_PREVIEW_SECONDS = 0
    job = GenerationJobFactory(images_total=1)
    calls: list[object] = []
    monkeypatch.setattr(runner.previews, "save", lambda *args: calls.append(args))
    runner.run_job(str(job.pk), worker="test@host")
    assert calls == [] and GenerationJob.objects.get(pk=job.pk).status == JobStatus.COMPLETE
