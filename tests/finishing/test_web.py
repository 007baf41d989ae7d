"""Finishing on the web side: submission limits, the tier note, the image page, files, Retry finishing."""

import io
from urllib.parse import urlparse

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.files.base import ContentFile
from django.test import Client, RequestFactory
from django.urls import reverse
from PIL import Image

from generation.admin import AssetPresetAdmin
from generation.jobs import submit
from generation.models import AssetPreset, GeneratedImage, GenerationJob, ImageModel, JobStatus, Upscaler
from generation.tokens import token_create

pytestmark = pytest.mark.django_db

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><path d="M0 0h8v8z" fill="#0f6cbd"/></svg>'


@pytest.fixture
def icon() -> AssetPreset:
    preset = AssetPreset.objects.get(slug="icon")
    preset.allowed_sizes, preset.default_width, preset.default_height = [[64, 64], [128, 128]], 64, 64
    preset.save()
    return preset


def form(**fields: str) -> dict[str, str]:
    return {"preset": "icon", "prompt": "a flat blue circle icon", "quality": "standard", "variations": "1"} | fields


def png(mode: str = "RGBA") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (64, 64), (15, 108, 189, 0) if mode == "RGBA" else (15, 108, 189)).save(buffer, format="PNG")
    return buffer.getvalue()


def finished_image(owner, preset: AssetPreset, *, svg: bool = True, score: float = 0.97) -> GeneratedImage:
    """An image as the worker leaves it after finishing an Icon (RGBA PNG and WebP, SVG, record)."""
    job = submit.job_create(owner=owner, preset=preset, prompt="a flat blue circle icon", variations=1, seed=5)
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETE, images_done=1)
    row = GeneratedImage(job=job, index=0, seed=5, width=64, height=64, has_alpha=True)
    row.file.save("01-5-finished.png", ContentFile(png()), save=False)
    row.rendered.save("01-5.png", ContentFile(png("RGB")), save=False)
    webp = io.BytesIO()
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(webp, format="WEBP", lossless=True)
    row.webp.save("01-5-finished.webp", ContentFile(webp.getvalue()), save=False)
    if svg:
        row.svg.save("01-5-finished.svg", ContentFile(SVG.encode()), save=False)
    row.compliance_before, row.compliance_after = 0.81, score
    row.finishing = [
        {"stage": "upscale", "seconds": 0.12, "settings": {"output_size": [64, 64], "upscaler": "Lanczos"}},
        {"stage": "palette", "seconds": 0.05, "settings": {"tolerance": 10.0, "before": 0.81, "after": score}},
        {"stage": "transparent", "seconds": 0.01, "settings": {"background": "#f6f7f9"}},
    ]
    row.save()
    return row


def test_the_studio_form_refuses_a_finished_size_past_the_limit_and_names_it(settings, alice_client, icon) -> None:
    settings.STUDIO_MAX_OUTPUT_SIDE = 200
    response = alice_client.post(reverse("studio"), form(quality="high", size="128x128"))
    assert response.status_code == 422
    assert "High on 128×128 would be 256×256; the largest finished side is 200" in response.content.decode()
    assert alice_client.post(reverse("studio"), form(quality="standard", size="128x128")).status_code == 302


def test_the_api_answers_422_for_the_same_submission(settings, alice, icon) -> None:
    settings.STUDIO_MAX_OUTPUT_SIDE = 200
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
    body = {"asset_type": "icon", "description": "a flat blue circle", "quality": "high", "size": "128x128"}
    response = api.post("/api/v1/jobs", body, content_type="application/json")
    assert response.status_code == 422 and "the largest finished side is 200" in response.json()["message"]
    assert not GenerationJob.objects.exists()


def test_the_studio_form_says_what_each_tier_does_for_the_asset_type(alice_client, icon) -> None:
    Upscaler.objects.all().delete()  # the seeded demo upscaler
    page = alice_client.get(reverse("studio")).content.decode()
    assert "<strong>High:</strong> 40 steps, 2× upscale with Lanczos (no upscaler installed)" in page
    Upscaler.objects.create(
        key="demo-icons", name="Demo icons 4x", file="d.pth", scale=4, license_name="MIT", commercial_use=True
    )
    page = alice_client.get(reverse("studio")).content.decode()
    assert "<strong>High:</strong> 40 steps, 2× upscale with Demo icons 4x" in page
    assert "<strong>Standard:</strong> 28 steps</li>" in page
    # Picking another asset type brings its note along with its sizes.
    swap = alice_client.get(reverse("size-options"), {"preset": "product-illustration"}).content.decode()
    assert 'id="tier-notes" hx-swap-oob="true"' in swap and "4× upscale with Demo icons 4x, refiner" in swap


def test_an_svg_is_served_sandboxed_and_as_an_attachment_when_asked(alice, alice_client, icon) -> None:
    image = finished_image(alice, icon)
    url = reverse("image-file", args=[image.pk])
    response = alice_client.get(url, {"format": "svg"})
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert response["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).decode() == SVG
    download = alice_client.get(url, {"format": "svg", "download": "1"})
    assert download["Content-Disposition"].startswith("attachment") and ".svg" in download["Content-Disposition"]


def test_an_image_without_an_svg_answers_404_with_a_page_saying_so(alice, alice_client, bob_client, icon) -> None:
    image = finished_image(alice, icon, svg=False)
    response = alice_client.get(reverse("image-file", args=[image.pk]), {"format": "svg"})
    assert response.status_code == 404 and "This image has no SVG" in response.content.decode()
    assert bob_client.get(reverse("image-file", args=[image.pk]), {"format": "svg"}).status_code == 404


def test_the_stored_webp_is_served_with_its_alpha(alice, alice_client, icon) -> None:
    image = finished_image(alice, icon)
    response = alice_client.get(reverse("image-file", args=[image.pk]), {"format": "webp"})
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).mode == "RGBA"


def test_the_image_page_shows_what_finishing_did_and_the_cut_out_on_a_checkerboard(alice, alice_client, icon) -> None:
    image = finished_image(alice, icon)
    page = alice_client.get(reverse("image", args=[image.pk])).content.decode()
    assert 'class="full checker"' in page
    assert "81% → 97% of pixels within ΔE2000 10.0" in page
    assert "<td>upscale</td>" in page and "<td>transparent</td>" in page and "upscaler Lanczos" in page
    assert "format=svg" in page and "Download PNG" in page and "format=webp" in page
    assert "Upscaler: Demo icons 4x (offline) (4x, RealESRGAN Compact) · license Brand Studio" in page


def test_grid_tiles_show_the_on_brand_score_and_flag_it_below_the_floor(alice, alice_client, icon) -> None:
    good = finished_image(alice, icon, score=0.97)
    panel = alice_client.get(good.job.get_absolute_url()).content.decode()
    assert "on-brand 97%" in panel and 'class="checker"' in panel and "off-brand" not in panel
    poor = finished_image(alice, icon, score=0.62)  # the Icon's floor is 0.9
    panel = alice_client.get(poor.job.get_absolute_url()).content.decode()
    assert '<figure class="off-brand">' in panel and "on-brand 62% · below 90%" in panel


def test_retry_finishing_is_offered_on_a_failed_finishing_and_requeues_only_the_finishing(
    alice, alice_client, icon, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from brandstudio.celery import app

    sent: list[tuple[str, tuple]] = []
    monkeypatch.setattr(app, "send_task", lambda name, args, **options: sent.append((name, args)))
    image = finished_image(alice, icon)
    reason = "Finishing failed at the upscale stage: out of memory"
    GenerationJob.objects.filter(pk=image.job_id).update(status=JobStatus.FAILED, error=reason)
    panel = alice_client.get(image.job.get_absolute_url()).content.decode()
    assert "Retry finishing" in panel and reverse("job-refinish", args=[image.job_id]) in panel
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("job-refinish", args=[image.job_id]))
    assert response.status_code == 302
    job = GenerationJob.objects.get(pk=image.job_id)
    assert job.status == JobStatus.QUEUED and not job.error and job.images.count() == 1
    assert sent == [("generation.tasks.finish_generation_job", (str(job.pk),))]


def test_retry_finishing_is_refused_for_a_job_that_did_not_fail(alice, alice_client, icon) -> None:
    image = finished_image(alice, icon)
    response = alice_client.post(reverse("job-refinish", args=[image.job_id]), HTTP_HX_REQUEST="true")
    assert response.status_code == 409 and "Only a failed job" in response.content.decode()


def test_a_running_panel_says_which_image_is_being_finished(alice, alice_client, icon) -> None:
    job = submit.job_create(owner=alice, preset=icon, prompt="a flat circle", variations=4, seed=5)
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.PROCESSING, images_done=2, progress_step=6, progress_steps=6, timings={"finishing": 2}
    )
    job.refresh_from_db()
    before = job.live_stamp
    assert "Finishing 2 of 4" in alice_client.get(job.get_absolute_url()).content.decode()
    GenerationJob.objects.filter(pk=job.pk).update(timings={"finishing": 3})
    job.refresh_from_db()
    assert job.live_stamp != before  # the live channel sends the panel again


def test_reusing_a_high_job_plans_the_same_stages(alice_client, icon) -> None:
    Upscaler.objects.all().delete()  # the seeded demo upscaler: this test names its own
    Upscaler.objects.create(
        key="x4", name="Demo icons 4x", file="d.pth", scale=4, license_name="x", commercial_use=True
    )
    assert alice_client.post(reverse("studio"), form(quality="high", size="128x128")).status_code == 302
    first = GenerationJob.objects.get()
    reuse = alice_client.get(reverse("job-reuse", args=[first.pk]))
    values = dict(item.split("=", 1) for item in urlparse(reuse["Location"]).query.split("&"))
    assert values["quality"] == "high" and values["size"] == "128x128"
    assert alice_client.post(reverse("studio"), form(quality=values["quality"], size=values["size"])).status_code == 302
    second = GenerationJob.objects.exclude(pk=first.pk).get()
    assert second.params["finishing"] == first.params["finishing"]
    assert second.params["finishing"]["output_size"] == [256, 256]
    assert second.params["finishing"]["upscaler"]["key"] == "x4"


def test_saving_an_asset_type_with_the_refiner_warns_of_families_without_img2img(admin_user) -> None:
    common = {"license_name": "x", "commercial_use": True, "enabled": True}
    ImageModel.objects.create(key="klein", name="Klein", family="flux2", local_path="klein", **common)
    ImageModel.objects.create(key="hidream", name="HiDream", family="hidream", local_path="hd", **common)
    request = RequestFactory().post("/")
    request.user, request.session = admin_user, {}
    request._messages = FallbackStorage(request)
    preset = AssetPreset.objects.get(slug="product-illustration")  # use_refiner on
    AssetPresetAdmin(AssetPreset, admin.site).save_model(request, preset, None, True)
    assert [str(m) for m in get_messages(request)] == ["Refiner: FLUX.2, HiDream have no img2img; their jobs skip it."]


def test_batches_and_comparisons_refuse_a_finished_size_past_the_limit_too(settings, alice, icon) -> None:
    from generation.forms import BatchForm, CompareForm

    settings.STUDIO_MAX_OUTPUT_SIDE = 100
    batch = BatchForm({"preset": "icon", "descriptions": "a star", "quality": "high", "variations": "1"}, user=alice)
    assert not batch.is_valid() and "the largest finished side is 100" in str(batch.errors)
    compare = CompareForm(
        {"prompt": "a star", "presets": ["icon", "logo-illustration"], "models": ["demo-brand"], "quality": "high",
         "variations": "1"},
        user=alice,
    )  # fmt: skip
    assert not compare.is_valid() and "the largest finished side is 100" in str(compare.errors)
