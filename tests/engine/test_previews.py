"""Live previews drawn by real engines: latents unpacked as each pipeline does, colours fitted on the
model's own VAE, stored by the runner while the job runs and gone when it ends."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from django.conf import settings
from PIL import Image

from generation.devtools.tiny import TINY_BUILDERS
from generation.engine import engine_class
from generation.engine.base import DiffusersEngine
from generation.engine.types import GenerationRequest
from generation.models import GenerationJob, ImagePreview, JobStatus
from generation.worker import progress as worker_progress
from generation.worker import run as worker_run
from generation.worker.progress import save_previews
from tests.factories import AssetPresetFactory, GenerationJobFactory, leased

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
    final = shape_of(finals[0])
    preview, noise = shape_of(drawn[-1][0].resize(finals[0].size)), shape_of(drawn[0][0].resize(finals[0].size))
    # The same shape, blurred (the Fluent demo model's colours come out greyed: a linear map from
    # its latents cannot paint them, so shape is what is compared), and it took shape on the way.
    assert iou(preview, final) > 0.7
    assert iou(preview, final) > iou(noise, final) + 0.3
    # Half-way the denoised estimate already shows it (the noisy latents would still be noise).
    halfway = shape_of(drawn[len(drawn) // 2][0].resize(finals[0].size))
    assert iou(halfway, final) > 0.7


def shape_of(image: Image.Image) -> np.ndarray:
    """What stands out from the image's own background (the median colour of its border)."""
    pixels = np.asarray(image.convert("RGB"), dtype=float)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return np.linalg.norm(pixels - np.median(border, axis=0), axis=-1) > 30


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


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
    real_on_preview = worker_progress.Progress.on_preview

    def on_preview_then_look(self, first, draw):
        real_on_preview(self, first, draw)
        if self.step == self.total:
            return  # the last step makes no preview: the image itself comes next
        progress = GenerationJob.objects.get(pk=job.pk).progress_step
        for row in ImagePreview.objects.filter(job=job):
            seen.append((row.index, row.step, progress, Image.open(io.BytesIO(bytes(row.webp))).size))

    monkeypatch.setattr(worker_progress.Progress, "on_preview", on_preview_then_look)
    worker_run.run_job(str(job.pk), worker="test@host")
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
    monkeypatch.setattr(worker_progress, "save_previews", lambda *args: calls.append(args))
    worker_run.run_job(str(job.pk), worker="test@host")
    assert calls == [] and GenerationJob.objects.get(pk=job.pk).status == JobStatus.COMPLETE


@pytest.mark.django_db
class TestTheApi:
    @pytest.fixture
    def api(self, alice):
        from django.test import Client

        from generation.tokens import token_create

        return Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}")

    def running_job_with_previews(self, owner) -> GenerationJob:
        job = GenerationJobFactory(owner=owner, status=JobStatus.PROCESSING, images_total=2, progress_steps=8)
        save_previews(leased(job), 0, 4, [Image.new("RGB", (64, 64), "orange"), Image.new("RGB", (64, 64), "navy")])
        return job

    def test_a_job_offers_its_previews_only_when_asked(self, api, alice) -> None:
        job = self.running_job_with_previews(alice)
        assert api.get(f"/api/v1/jobs/{job.pk}").json()["previews"] is None
        listed = api.get(f"/api/v1/jobs/{job.pk}?previews=true").json()["previews"]
        assert [(p["index"], p["step"]) for p in listed] == [(0, 4), (1, 4)]
        response = api.get(listed[1]["url"])
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
        assert Image.open(io.BytesIO(response.content)).convert("RGB").getpixel((32, 32))[2] > 100  # navy

    def test_an_ended_job_has_no_previews(self, api, alice) -> None:
        job = self.running_job_with_previews(alice)
        GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETE, images_done=2)
        assert api.get(f"/api/v1/jobs/{job.pk}?previews=true").json()["previews"] == []
        response = api.get(f"/api/v1/jobs/{job.pk}/previews/0")
        assert response.status_code == 404 and "no preview now" in response.json()["message"]

    def test_another_users_previews_are_a_404(self, api, bob) -> None:
        theirs = self.running_job_with_previews(bob)
        assert api.get(f"/api/v1/jobs/{theirs.pk}?previews=true").status_code == 404
        assert api.get(f"/api/v1/jobs/{theirs.pk}/previews/0").status_code == 404

    def test_an_index_out_of_range_is_a_422(self, api, alice) -> None:
        job = self.running_job_with_previews(alice)
        response = api.get(f"/api/v1/jobs/{job.pk}/previews/100000")
        assert response.status_code == 422 and response.json()["field"] == "index"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_page_sees_a_preview_of_a_job_a_real_worker_is_running(alice_client, tmp_path) -> None:
    """The worker writes previews mid-job; the page's live channel brings them; they go at the end."""
    import re

    from django.urls import reverse

    from tests.processes import ended, flush_broker, wait_for, worker, worker_env

    flush_broker()
    long = AssetPresetFactory(slug="long", default_width=256, default_height=256, allowed_sizes=[[256, 256]])
    long.steps = 100  # several seconds on the tiny model: time for a few previews
    long.save()
    with worker(worker_env(tmp_path, STUDIO_PREVIEW_SECONDS="0.2"), tmp_path / "worker.log") as w:
        data = {"preset": "long", "prompt": "a flat blue circle", "quality": "standard", "variations": "1"}
        panel = alice_client.post(reverse("studio"), data, HTTP_HX_REQUEST="true").content.decode()
        job = GenerationJob.objects.get()
        stamp = re.search(r'data-live-job="([^"]+)"', panel)[1]

        def a_preview() -> str | None:
            response = alice_client.post(reverse("live"), {"job": [stamp]}, HTTP_HX_REQUEST="true")
            body = response.content.decode()
            return body if response.status_code == 200 and "data:image/webp;base64," in body else None

        body = wait_for(a_preview, timeout=90, what="a preview on the page", interval=0.5)
        assert "as it takes shape" in body and 'id="job-' in body and "Processing" in body
        job = wait_for(lambda: ended(job), timeout=120, what="the job")
        assert job.status == JobStatus.COMPLETE, (job.error, w.output()[-3000:])
    final = alice_client.post(reverse("live"), {"job": [stamp]}, HTTP_HX_REQUEST="true")
    assert final.status_code == 286 and "data:image/webp" not in final.content.decode()
    assert not ImagePreview.objects.exists()


def test_the_denoised_estimate_follows_the_flow_and_leaves_other_schedulers_alone() -> None:
    from types import SimpleNamespace

    from generation.engine.base import denoised_estimate

    x0, noise = torch.full((1, 4), 2.0), torch.full((1, 4), -1.0)
    flow = type("FlowMatchEulerDiscreteScheduler", (), {})()
    flow.sigmas, last = torch.tensor([1.0, 0.6, 0.2, 0.0]), {}
    at = [(1 - s) * x0 + s * noise for s in flow.sigmas]  # a straight flow from noise to x0
    flow.step_index = 1
    assert torch.equal(denoised_estimate(flow, at[1], last), at[1])  # the first step: nothing to compare
    flow.step_index = 2
    assert torch.allclose(denoised_estimate(flow, at[2], last), x0)
    other = SimpleNamespace(sigmas=flow.sigmas, step_index=2)
    assert torch.equal(denoised_estimate(other, at[2], {"latents": at[1]}), at[2])
