"""Inpaint: paint over part of a studio image and have only that redrawn."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, ImageDraw

from generation.control.inpaint import mask_of
from generation.jobs import submit
from generation.models import GenerationJob, ImageModel, InputImage, JobStatus
from generation.worker import run as worker_run
from tests.test_workflow import finished_job

pytestmark = pytest.mark.django_db


def mask_png(size: tuple[int, int] = (64, 64), box: tuple[int, int, int, int] | None = (16, 16, 48, 48), *, alpha=True):
    """A canvas export (white strokes on transparency) or, alpha=False, white on black."""
    image = Image.new("RGBA" if alpha else "L", size, (0, 0, 0, 0) if alpha else 0)
    if box:
        ImageDraw.Draw(image).rectangle(box, fill=(255, 64, 129, 255) if alpha else 255)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return SimpleUploadedFile("mask.png", buffer.getvalue(), content_type="image/png")


def inpaint(client, image, mask, **extra):
    return client.post(reverse("image-inpaint", args=[image.pk]), {"mask": mask, "variations": "2"} | extra)


def test_a_painted_mask_makes_a_job_that_repaints_only_it_on_the_same_weights(alice_client, alice, preset) -> None:
    image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
    assert alice_client.get(reverse("image-inpaint", args=[image.pk])).status_code == 200
    response = inpaint(alice_client, image, mask_png(), prompt="a red square")
    job = GenerationJob.objects.latest("created_at")
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert job.source_image == image and job.params["inpaint"]["of"] == str(image.pk)
    assert job.prompt == "a red square" and job.images_total == 2
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE, job.error
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert "Inpainted: a mask over" in page and f"seed {image.seed}" in page
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(b"".join(alice_client.get(reverse("job-zip", args=[job.pk])))))
    assert len([n for n in archive.namelist() if n.startswith("inputs/mask-")]) == 1


def test_the_image_page_offers_inpaint_only_where_the_model_can(alice_client, alice, preset) -> None:
    image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
    assert "Inpaint</a>" in alice_client.get(reverse("image", args=[image.pk])).content.decode()
    ImageModel.objects.filter(key="hidream-i1-fast").update(enabled=True)
    other = finished_job(alice, preset=preset, model_key="hidream-i1-fast").images.first()
    assert "Inpaint</a>" not in alice_client.get(reverse("image", args=[other.pk])).content.decode()
    response = inpaint(alice_client, other, mask_png())
    assert response.status_code == 422 and "cannot repaint part of an image" in response.content.decode()
    assert "Demo brand" in response.content.decode() and GenerationJob.objects.count() == 2


@pytest.mark.parametrize(
    ("mask", "says"),
    [
        (lambda: mask_png(box=None), "paints nothing"),
        (lambda: mask_png(box=(0, 0, 64, 64)), "covers the whole image"),
        (lambda: mask_png(size=(64, 32)), "The mask is 64×32 and the image 64×64"),
        (lambda: SimpleUploadedFile("mask.png", b"not a png"), "not a PNG, JPEG or WebP image"),
    ],
    ids=["empty", "full", "other-shape", "not-an-image"],
)
def test_a_mask_that_cannot_be_used_is_a_form_error_that_says_why(alice_client, alice, preset, mask, says) -> None:
    image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
    response = inpaint(alice_client, image, mask())
    assert response.status_code == 422 and says in response.content.decode()
    assert GenerationJob.objects.count() == 1


def test_a_mask_of_another_size_but_the_same_shape_is_scaled_and_the_job_says_so(alice, preset) -> None:
    image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
    mask = InputImage.objects.create(owner=alice, sha256="2" * 64, width=128, height=128)
    buffer = io.BytesIO()
    mask_of(Image.open(mask_png(size=(128, 128), box=(32, 32, 96, 96)))).save(buffer, format="PNG")
    mask.file.save("m.png", io.BytesIO(buffer.getvalue()))
    job = submit.job_inpaint(image=image, mask=mask)
    assert job.params["inpaint"]["note"] == "The mask (128×128) was scaled to the image (64×64)."


def test_white_on_black_and_canvas_strokes_read_as_the_same_mask() -> None:
    canvas = mask_of(Image.open(mask_png()))
    classic = mask_of(Image.open(mask_png(alpha=False)))
    assert list(canvas.getdata()) == list(classic.getdata()) and set(canvas.getdata()) == {0, 255}


def test_someone_elses_image_cannot_be_inpainted(alice, bob, preset) -> None:
    from django.test import Client

    image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
    bob_client = Client()
    bob_client.force_login(bob)
    assert inpaint(bob_client, image, mask_png()).status_code == 404


def test_the_demo_model_keeps_what_is_not_painted_and_redraws_what_is() -> None:
    """Through the engine as the worker runs it: a star, its left half repainted as a heart."""
    from functools import partial
    from pathlib import Path

    import numpy as np

    from generation.devtools.demo_model import MODEL_OPTIONS
    from generation.devtools.demo_quality import ICON_TEMPLATE, _collect, _quiet
    from generation.engine import engine_class
    from generation.engine.types import GenerationRequest

    engine = engine_class("flux")(Path("demo/brand-model"), device="cpu", options=MODEL_OPTIONS)
    ask = partial(GenerationRequest, negative_prompt="", width=64, height=64, steps=28, guidance_scale=3.5, seeds=[0])
    star: list[Image.Image] = []
    engine.generate(
        ask(prompt=ICON_TEMPLATE.replace("{subject}", "a flat blue star icon")),
        max_batch=1,
        on_step=_quiet,
        on_images=partial(_collect, star),
    )
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    redrawn: list[Image.Image] = []
    request = ask(
        prompt=ICON_TEMPLATE.replace("{subject}", "a flat green heart icon"), init_image=star[0], mask_image=mask
    )
    engine.generate(request, max_batch=1, on_step=_quiet, on_images=partial(_collect, redrawn))
    before, after = (np.asarray(i.convert("RGB"), dtype=np.float32) for i in (star[0], redrawn[0]))
    kept = np.abs(before[:, 40:] - after[:, 40:]).mean()  # right of the mask (and its blur)
    changed = np.abs(before[:, :28] - after[:, :28]).mean()
    assert kept < 12 and changed > 2 * kept, (kept, changed)
    assert engine._inpaint is not None and engine._inpaint.transformer is engine.pipe.transformer  # no second copy


class TestInTheApi:
    @pytest.fixture
    def api(self, alice):
        from django.test import Client

        from generation.tokens import token_create

        return Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}")

    def test_a_mask_upload_then_an_inpaint_job(self, api, alice, preset) -> None:
        image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
        sent = api.post("/api/v1/inputs?kind=mask", {"file": mask_png()})
        assert sent.status_code == 201, sent.content
        body = {"mask": sent.json()["id"], "description": "a red dot", "variations": 1}
        created = api.post(f"/api/v1/images/{image.pk}/inpaint", body, content_type="application/json")
        assert created.status_code == 202, created.content
        assert GenerationJob.objects.get(pk=created.json()["id"]).params["inpaint"]["of"] == str(image.pk)

    def test_a_bad_mask_or_someone_elses_is_a_422_on_the_mask(self, api, alice, bob, preset) -> None:
        image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
        empty = api.post("/api/v1/inputs?kind=mask", {"file": mask_png(box=None)}).json()
        bobs = InputImage.objects.create(owner=bob, sha256="3" * 64, file="inputs/b.png", width=64, height=64)
        for mask, says in ((empty["id"], "paints nothing"), (str(bobs.pk), "No mask of yours")):
            response = api.post(f"/api/v1/images/{image.pk}/inpaint", {"mask": mask}, content_type="application/json")
            assert response.status_code == 422 and response.json()["field"] == "mask"
            assert says in response.json()["message"]
        assert GenerationJob.objects.count() == 1


def test_extending_the_canvas_draws_a_larger_image_around_the_old_one(alice_client, alice, preset) -> None:
    from generation.control.outpaint import canvas_and_mask, extended_size

    image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
    response = alice_client.post(
        reverse("image-outpaint", args=[image.pk]),
        {"left": "50", "right": "0", "top": "0", "bottom": "0", "variations": "1"},
    )
    job = GenerationJob.objects.latest("created_at")
    assert response.status_code == 302 and job.source_image == image
    assert (job.params["width"], job.params["height"]) == (96, 64)
    assert job.params["inpaint"]["note"] == "Outpainted from 64×64 to 96×64."
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE, job.error
    assert (job.images.first().width, job.images.first().height) == (96, 64)
    # The old image sits where it was; the mask covers the new part and a seam into the old.
    width, height, pixels = extended_size(64, 64, {"left": 50, "right": 0, "top": 0, "bottom": 0}, 16)
    canvas, mask = canvas_and_mask(Image.new("RGB", (64, 64), "red"), (width, height), pixels)
    assert canvas.getpixel((60, 32)) == (255, 0, 0) and mask.getpixel((60, 32)) == 0
    assert mask.getpixel((10, 32)) == 255 and mask.getpixel((33, 32)) == 255  # the seam


@pytest.mark.parametrize(
    ("extend", "says"),
    [({"left": "0"}, "Extend at least one side"), ({"left": "150"}, "less than or equal to 100")],
    ids=["nothing", "too-much"],
)
def test_an_extension_that_cannot_be_drawn_says_why(alice_client, alice, preset, extend, says) -> None:
    image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
    data = {"left": "0", "right": "0", "top": "0", "bottom": "0", "variations": "1"} | extend
    response = alice_client.post(reverse("image-outpaint", args=[image.pk]), data)
    assert response.status_code == 422 and says in response.content.decode()
    assert GenerationJob.objects.count() == 1


def test_the_api_extends_a_canvas_and_refuses_too_large_a_result(alice, preset) -> None:
    from django.test import Client

    from generation.tokens import token_create

    image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
    url = f"/api/v1/images/{image.pk}/outpaint"
    created = api.post(url, {"top": 25, "bottom": 25, "variations": 1}, content_type="application/json")
    assert created.status_code == 202, created.content
    assert (created.json()["width"], created.json()["height"]) == (64, 96)
    ImageModel.objects.filter(key="tiny-flux").update(max_side=64)
    refused = api.post(url, {"left": 50}, content_type="application/json")
    assert refused.status_code == 422 and "renders up to 64" in refused.json()["message"]
