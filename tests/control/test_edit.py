"""Instruction edits: "make the background blue" on a studio image, through FLUX.2 klein (tiny)."""

from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from generation.devtools.tiny import TINY_BUILDERS, build_tiny_flux2_klein, build_tiny_flux_kontext
from generation.engine import engine_class
from generation.engine.types import EngineError, GenerationRequest
from generation.jobs import submit
from generation.models import GenerationJob, ImageModel, JobStatus
from generation.tokens import token_create
from generation.worker import run as worker_run
from tests.test_workflow import finished_job


@pytest.fixture
def klein(db, tiny_flux_dir: Path) -> ImageModel:
    models = tiny_flux_dir.parent
    if not (models / "tiny-klein").exists():
        build_tiny_flux2_klein(models / "tiny-klein")
    return ImageModel.objects.create(
        key="tiny-klein",
        name="Tiny klein",
        family="flux2",
        local_path="tiny-klein",
        license_name="t",
        commercial_use=True,
    )


@pytest.mark.parametrize("family", ["flux2", "fluxkontext", "qwenimageedit"])
def test_the_engine_gives_the_image_to_the_pipeline_with_the_instruction(family, klein, tiny_flux_dir) -> None:
    folder = tiny_flux_dir.parent / "tiny-klein"
    if family != "flux2":
        folder = tiny_flux_dir.parent / f"tiny-{family}"
        if not folder.exists():
            TINY_BUILDERS[family](folder)
    engine = engine_class(family)(folder, device="cpu")

    def draw(**fields) -> np.ndarray:
        out: list = []
        request = GenerationRequest(
            prompt="make it blue",
            negative_prompt="",
            width=64,
            height=64,
            steps=2,
            guidance_scale=1.0,
            seeds=[1],
            **fields,
        )
        engine.generate(request, max_batch=1, on_step=lambda *_: None, on_images=lambda _, batch: out.extend(batch))
        return np.asarray(out[0], dtype=np.float32)

    plain, red = draw(), draw(edit_images=[Image.new("RGB", (64, 64), "red")])
    green = draw(edit_images=[Image.new("RGB", (128, 96), "green")])  # a delivered image, larger than the render
    assert np.abs(plain - red).max() > 0 and np.abs(red - green).max() > 0  # the image reaches the model
    with pytest.raises(EngineError, match="cannot follow an edit instruction"):
        flux = engine_class("flux")(tiny_flux_dir, device="cpu")
        flux.generate(
            GenerationRequest(
                prompt="x",
                negative_prompt="",
                width=64,
                height=64,
                steps=1,
                guidance_scale=1,
                seeds=[1],
                edit_images=[Image.new("RGB", (64, 64))],
            ),
            max_batch=1,
            on_step=lambda *_: None,
            on_images=lambda *_: None,
        )


@pytest.mark.django_db
def test_an_edit_on_the_page_makes_a_linked_job_and_the_chain_shows_on_the_result(alice_client, alice, preset, klein):
    image = finished_job(alice, preset=preset).images.first()
    assert alice_client.get(reverse("image-edit", args=[image.pk])).status_code == 200
    data = {"instruction": "make the background blue", "model": klein.pk, "variations": "1"}
    response = alice_client.post(reverse("image-edit", args=[image.pk]), data)
    job = GenerationJob.objects.get(model_key="tiny-klein")
    assert response.status_code == 302 and job.source_image == image
    assert job.params["prompt"] == "make the background blue" and job.params["edit"]["of"] == str(image.pk)
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE, job.error
    second = submit.job_edit(image=job.images.first(), instruction="add a checkmark", variations=1)
    worker_run.run_job(str(second.pk), worker="gpu@test")
    page = alice_client.get(reverse("image", args=[second.images.first().pk])).content.decode()
    steps = page[page.index('<ol class="edit-chain">') :]
    steps = steps[: steps.index("</ol>")]
    assert steps.index("“make the background blue”") < steps.index("“add a checkmark”") < steps.index("this image")


@pytest.mark.django_db
def test_without_an_edit_model_the_page_and_the_api_say_what_would_edit(alice_client, alice, preset) -> None:
    image = finished_job(alice, preset=preset).images.first()
    page = alice_client.get(reverse("image-edit", args=[image.pk])).content.decode()
    assert "No model here can follow an edit instruction" in page and "FLUX.2 [klein]" in page
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
    response = api.post(
        f"/api/v1/images/{image.pk}/edit", {"instruction": "make it blue"}, content_type="application/json"
    )
    assert response.status_code == 422 and "No model here can follow an edit instruction" in response.json()["message"]
    assert GenerationJob.objects.count() == 1


@pytest.mark.django_db
def test_the_api_edits_by_instruction_and_refuses_what_cannot(alice, bob, preset, klein) -> None:
    image = finished_job(alice, preset=preset).images.first()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
    url = f"/api/v1/images/{image.pk}/edit"
    created = api.post(url, {"instruction": "make it blue", "variations": 1}, content_type="application/json")
    assert created.status_code == 202, created.content
    assert GenerationJob.objects.get(pk=created.json()["id"]).model_key == "tiny-klein"
    empty = api.post(url, {"instruction": "  "}, content_type="application/json")
    assert empty.status_code == 422 and empty.json()["field"] == "instruction"
    other = api.post(url, {"instruction": "x", "model": "tiny-flux"}, content_type="application/json")
    assert other.status_code == 422 and other.json()["field"] == "model" and "tiny-klein" in other.json()["message"]
    bobs = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=bob, name='t')[1]}")
    assert bobs.post(url, {"instruction": "x"}, content_type="application/json").status_code == 404


@pytest.mark.django_db
def test_a_kontext_edit_runs_for_the_reference_group_and_its_outputs_carry_the_notice(
    alice, bob, preset, tiny_flux_dir, settings
) -> None:
    """FLUX.1 Kontext [dev] is non-commercial: registered as such, only the reference group
    edits with it, and the images say so."""
    from django.contrib.auth.models import Group

    from generation.auth import REFERENCE_GROUP

    if not (tiny_flux_dir.parent / "tiny-fluxkontext").exists():
        build_tiny_flux_kontext(tiny_flux_dir.parent / "tiny-fluxkontext")
    kontext = ImageModel(
        key="tiny-kontext",
        name="Tiny Kontext",
        family="fluxkontext",
        local_path="tiny-fluxkontext",
        license_name="FLUX.1 [dev] Non-Commercial",
        commercial_use=False,
        license_notice="FLUX.1 Kontext [dev]: non-commercial use only.",
    )
    kontext.full_clean()
    kontext.save()
    settings.ENTRA_REFERENCE_GROUP = "reference-group-id"
    alice.groups.add(Group.objects.get_or_create(name=REFERENCE_GROUP)[0])
    image = finished_job(alice, preset=preset).images.first()
    url = f"/api/v1/images/{image.pk}/edit"
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
    created = api.post(url, {"instruction": "add a checkmark", "variations": 1}, content_type="application/json")
    assert created.status_code == 202, created.content
    job = GenerationJob.objects.get(pk=created.json()["id"])
    assert job.model_key == "tiny-kontext"
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE, job.error
    assert api.get(f"/api/v1/jobs/{job.pk}").json()["license_notice"] == kontext.license_notice
    bobs = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=bob, name='t')[1]}")
    bobs_image = finished_job(bob, preset=preset).images.first()
    refused = bobs.post(f"/api/v1/images/{bobs_image.pk}/edit", {"instruction": "x"}, content_type="application/json")
    assert refused.status_code == 422 and "No model here can follow an edit instruction" in refused.json()["message"]


@pytest.mark.django_db
def test_a_qwen_image_edit_job_runs_and_its_model_draws_from_words_too(alice, preset, tiny_flux_dir) -> None:
    """Qwen-Image-Edit-Plus edits through its own pipeline; a job without a picture runs
    Qwen-Image's text-to-image pipeline on the same weights."""
    folder = tiny_flux_dir.parent / "tiny-qwenimageedit"
    if not folder.exists():
        TINY_BUILDERS["qwenimageedit"](folder)
    qwen = ImageModel(
        key="tiny-qwen-edit",
        name="Tiny Qwen edit",
        family="qwenimageedit",
        local_path="tiny-qwenimageedit",
        license_name="Apache-2.0",
        commercial_use=True,
    )
    qwen.full_clean()
    qwen.save()
    image = finished_job(alice, preset=preset).images.first()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
    edit = api.post(
        f"/api/v1/images/{image.pk}/edit",
        {"instruction": "add a checkmark", "model": "tiny-qwen-edit", "variations": 1},
        content_type="application/json",
    )
    plain = api.post(
        "/api/v1/jobs",
        {"asset_type": preset.slug, "description": "a star", "model": "tiny-qwen-edit", "variations": 1},
        content_type="application/json",
    )
    assert edit.status_code == 202 and plain.status_code == 202, (edit.content, plain.content)
    for created in (edit, plain):
        worker_run.run_job(created.json()["id"], worker="gpu@test")
        job = GenerationJob.objects.get(pk=created.json()["id"])
        assert job.status == JobStatus.COMPLETE, job.error
