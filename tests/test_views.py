import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from generation.models import AssetPreset, GeneratedImage, GenerationJob, ImageModel, JobStatus
from tests.factories import GenerationJobFactory

pytestmark = pytest.mark.django_db


def submit(client, **overrides):
    data = {"preset": "test-icon", "prompt": "a clipboard", "quality": "standard", "variations": "4", "size": ""}
    data.update(overrides)
    return client.post(reverse("studio"), data)


def image_for(job: GenerationJob) -> GeneratedImage:
    image = GeneratedImage(job=job, index=0, seed=1000, width=64, height=64)
    image.file.save("01-1000.png", ContentFile(b"\x89PNG fake"), save=True)
    return image


class TestStudioPage:
    def test_it_asks_anonymous_visitors_to_sign_in(self, client) -> None:
        response = client.get(reverse("studio"))
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))

    def test_it_lists_the_four_seeded_asset_types(self, alice_client) -> None:
        response = alice_client.get(reverse("studio"))
        for name in ("Icon", "Product Illustration", "Logo Illustration", "Premium Illustration"):
            assert name in response.content.decode()

    def test_it_hides_disabled_asset_types(self, alice_client) -> None:
        AssetPreset.objects.filter(slug="icon").update(enabled=False)
        assert 'value="icon"' not in alice_client.get(reverse("studio")).content.decode()

    def test_it_creates_a_job_with_every_parameter_resolved(self, alice_client, alice, preset) -> None:
        response = submit(alice_client, seed="42", size="128x64", quality="draft")
        job = GenerationJob.objects.get()
        assert response.status_code == 302 and response.url == job.get_absolute_url()
        assert job.owner == alice and job.status == JobStatus.QUEUED and job.images_total == 4
        assert job.params["prompt"] == "a clipboard, flat icon"
        assert job.params["negative_prompt"] == ""  # tiny FLUX.1 without true CFG ignores "blurry"
        assert (job.params["width"], job.params["height"]) == (128, 64)
        assert job.params["seeds"] == [42, 43, 44, 45]
        assert job.params["steps"] == 2  # draft halves the preset's 4 steps
        assert job.params["model_key"] == "tiny-flux"

    def test_htmx_submission_answers_with_the_polling_job_panel(self, alice_client, preset) -> None:
        response = alice_client.post(
            reverse("studio"),
            {"preset": "test-icon", "prompt": "a gear", "quality": "high", "variations": "2"},
            HTTP_HX_REQUEST="true",
        )
        body = response.content.decode()
        assert response.status_code == 200
        assert 'hx-trigger="every 1s"' in body and "Queued" in body
        assert GenerationJob.objects.get().params["steps"] == 6  # high: 1.5 x 4


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"prompt": ""}, "prompt", "Describe what you need."),
        ({"prompt": "   "}, "prompt", "Describe what you need."),
        ({"prompt": "x" * 10_000}, "prompt", "under 1000 characters"),
        ({"variations": "0"}, "variations", "greater than or equal to 1"),
        ({"variations": "99"}, "variations", "less than or equal to 8"),
        ({"variations": "many"}, "variations", "Enter a whole number"),
        ({"preset": "no-such-type"}, "preset", "Pick one of the available asset types."),
        ({"size": "300x300"}, "size", "300x300 is not a size for Test Icon"),
        ({"quality": "ultra-mega"}, "quality", "Select a valid choice"),
        ({"seed": "-1"}, "seed", "greater than or equal to 0"),
    ],
)
def test_bad_input_gets_a_form_error_and_creates_no_job(alice_client, preset, overrides, field, message) -> None:
    response = submit(alice_client, **overrides)
    assert response.status_code == 422
    assert message in " ".join(response.context["form"].errors[field])
    assert not GenerationJob.objects.exists()


def test_a_disabled_asset_type_is_refused(alice_client, preset) -> None:
    preset.enabled = False
    preset.save()
    response = submit(alice_client)
    assert response.status_code == 422 and "preset" in response.context["form"].errors
    assert not GenerationJob.objects.exists()


def test_a_size_beyond_the_model_limit_is_refused(alice_client, preset, settings) -> None:
    ImageModel.objects.filter(key="tiny-flux").update(max_side=64)
    response = submit(alice_client, size="128x64")
    assert "renders up to 64×64" in " ".join(response.context["form"].errors["size"])
    assert not GenerationJob.objects.exists()


def test_htmx_form_errors_are_swapped_into_the_form(alice_client, preset) -> None:
    response = alice_client.post(reverse("studio"), {"preset": "test-icon", "prompt": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#generate-form" and response["HX-Reswap"] == "outerHTML"
    assert "Describe what you need." in response.content.decode()


def test_size_options_follow_the_picked_asset_type(alice_client) -> None:
    response = alice_client.get(reverse("size-options"), {"preset": "premium-illustration"})
    body = response.content.decode()
    assert "Default (1024x1024)" in body and "4096x4096" in body and "256x256" not in body


class TestJobPage:
    def test_polling_continues_while_the_job_runs(self, alice_client, alice) -> None:
        job = GenerationJobFactory(owner=alice, status=JobStatus.PROCESSING, progress_step=3, progress_steps=4)
        response = alice_client.get(job.get_absolute_url(), HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        assert "Step 3 of 4" in response.content.decode() and "images 1–2 of 2" in response.content.decode()

    def test_polling_stops_with_286_when_the_job_ends(self, alice_client, alice) -> None:
        job = GenerationJobFactory(owner=alice, status=JobStatus.COMPLETE)
        response = alice_client.get(job.get_absolute_url(), HTTP_HX_REQUEST="true")
        assert response.status_code == 286 and "every 1s" not in response.content.decode()

    def test_a_failed_job_shows_its_reason_and_a_retry_button(self, alice_client, alice) -> None:
        job = GenerationJobFactory(owner=alice, status=JobStatus.FAILED, error="Out of GPU memory")
        body = alice_client.get(job.get_absolute_url()).content.decode()
        assert "Out of GPU memory" in body and "Retry" in body

    def test_retry_makes_a_new_job_with_the_same_parameters(self, alice_client, alice) -> None:
        job = GenerationJobFactory(owner=alice, status=JobStatus.FAILED, error="boom")
        response = alice_client.post(reverse("job-retry", args=[job.id]))
        new = GenerationJob.objects.exclude(pk=job.pk).get()
        assert response.url == new.get_absolute_url()
        assert new.params == job.params and new.retry_of == job and new.status == JobStatus.QUEUED

    def test_cancel_stops_a_queued_job(self, alice_client, alice) -> None:
        job = GenerationJobFactory(owner=alice)
        alice_client.post(reverse("job-cancel", args=[job.id]))
        job.refresh_from_db()
        assert job.status == JobStatus.CANCELLED


class TestOwnership:
    """Bob cannot see, fetch, retry or cancel Alice's work: every such URL is a 404."""

    def test_bob_gets_404_for_alices_job_pages(self, bob_client, alice) -> None:
        job = GenerationJobFactory(owner=alice, status=JobStatus.FAILED)
        assert bob_client.get(job.get_absolute_url()).status_code == 404
        assert bob_client.get(job.get_absolute_url(), HTTP_HX_REQUEST="true").status_code == 404
        assert bob_client.post(reverse("job-retry", args=[job.id])).status_code == 404
        assert bob_client.post(reverse("job-cancel", args=[job.id])).status_code == 404
        assert GenerationJob.objects.count() == 1

    def test_bob_gets_404_for_alices_images(self, bob_client, alice_client, alice) -> None:
        image = image_for(GenerationJobFactory(owner=alice, status=JobStatus.COMPLETE))
        for url in (reverse("image", args=[image.id]), reverse("image-file", args=[image.id])):
            assert bob_client.get(url).status_code == 404
            assert alice_client.get(url).status_code == 200

    def test_alices_studio_does_not_list_bobs_jobs(self, alice_client, bob) -> None:
        GenerationJobFactory(owner=bob, prompt="bob's secret product")
        assert "bob&#x27;s secret product" not in alice_client.get(reverse("studio")).content.decode()


def test_image_downloads_as_a_png_attachment(alice_client, alice) -> None:
    image = image_for(GenerationJobFactory(owner=alice, status=JobStatus.COMPLETE))
    response = alice_client.get(reverse("image-file", args=[image.id]), {"download": "1"})
    assert response["Content-Type"] == "image/png"
    assert 'attachment; filename="test-preset' in response["Content-Disposition"]
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_a_fresh_studio_form_starts_on_the_first_asset_type(alice_client) -> None:
    form = alice_client.get(reverse("studio")).context["form"]
    assert form.initial["preset"] == "icon" and form.initial["model"] == "tiny-flux"


def test_the_studio_form_reads_its_models_and_asset_types_once_a_page(alice_client) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ImageModel.objects.create(
        key="second", name="Second model", family="flux", local_path="/nowhere", license_name="MIT", commercial_use=True
    )
    with CaptureQueriesContext(connection) as queries:
        page = alice_client.get(reverse("studio")).content.decode()
    # The radios, the license notes, the tier notes and "takes references" share one read each.
    froms = [q["sql"].split(" FROM ", 1)[1].split()[0] for q in queries.captured_queries if " FROM " in q["sql"]]
    assert froms.count('"generation_imagemodel"') == 1 and froms.count('"generation_assetpreset"') == 1
    assert 'value="second"' in page and 'value="tiny-flux"' in page and 'value="icon"' in page
    ImageModel.objects.filter(key="second").update(enabled=False)  # read again by the next page
    assert 'value="second"' not in alice_client.get(reverse("studio")).content.decode()


def test_text_the_database_cannot_hold_is_a_form_error_not_a_500(alice_client, preset) -> None:
    from django.urls import reverse

    for data in ({"preset": "ic\x00on"}, {"prompt": "a key\x00"}):
        payload = {"preset": preset.slug, "prompt": "a key", "quality": "draft", "variations": "1"} | data
        assert alice_client.post(reverse("studio"), payload).status_code == 422
    assert alice_client.get(reverse("history"), {"q": "key\x00"}).status_code == 200


def test_a_models_license_link_is_shown_where_its_license_is(alice_client, alice, preset) -> None:
    from generation.tokens import token_create

    url = "https://example.com/license"
    ImageModel.objects.filter(key="tiny-flux").update(license_url=url, license_notice="Read it first.")
    assert (
        f'<a href="{url}" rel="noopener noreferrer">The license</a>'
        in alice_client.get(reverse("studio")).content.decode()
    )
    submit(alice_client, quality="draft")
    image = image_for(GenerationJob.objects.get())
    page = alice_client.get(reverse("image", args=[image.id])).content.decode()
    assert f'Model license: <a href="{url}"' in page
    token = token_create(user=alice, name="cli")[1]
    models = alice_client.get("/api/v1/models", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert [m["license_url"] for m in models if m["key"] == "tiny-flux"] == [url]
