"""Iterate, compare and batch: More like this, side-by-side comparisons, batches, selections."""

import io
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from generation.models import AssetPreset, GenerationJob, GroupKind, ImageModel, JobGroup, JobStatus
from generation.worker import run as worker_run
from tests.factories import AssetPresetFactory
from tests.test_workflow import finished_job

pytestmark = pytest.mark.django_db


def vary(client, image, strength: str = "subtle", **headers):
    return client.post(reverse("image-vary", args=[image.id]), {"strength": strength}, **headers)


class TestMoreLikeThis:
    def test_subtle_and_strong_start_from_the_image_with_new_seeds(self, alice_client, alice) -> None:
        image = finished_job(alice).images.first()
        for strength, value in [("subtle", 0.4), ("strong", 0.7)]:
            response = vary(alice_client, image, strength)
            assert response.status_code == 302
            job = GenerationJob.objects.latest("created_at")
            assert job.source_image == image and job.params["init_image"] == image.file.name
            assert job.params["strength"] == value and job.variation["mode"] == "img2img"
            assert job.params["prompt"] == image.job.params["prompt"]
            assert not set(job.params["seeds"]) & set(image.job.params["seeds"])

    def test_a_model_without_img2img_falls_back_to_nearby_seeds_and_says_so(self, alice_client, alice) -> None:
        ImageModel.objects.filter(key="tiny-flux").update(supports_img2img=False)
        image = finished_job(alice, images=2).images.first()  # the job's seeds are 1000, 1001
        response = vary(alice_client, image, "strong", HTTP_HX_REQUEST="true")
        job = GenerationJob.objects.latest("created_at")
        assert job.variation["mode"] == "seeds" and "init_image" not in job.params
        assert job.params["seeds"] == [1002, 1003]
        assert "cannot start from an image" in response.content.decode()

    def test_variations_of_a_compared_image_do_not_join_the_comparison(self, alice_client, alice) -> None:
        a, b = AssetPresetFactory(), AssetPresetFactory()
        compare(alice_client, presets=[a.slug, b.slug], models=["tiny-flux"])
        group = JobGroup.objects.get()
        image = finished_job(alice, group=group).images.first()
        vary(alice_client, image)
        assert GenerationJob.objects.latest("created_at").group is None

    def test_the_new_panel_says_what_it_varies(self, alice_client, alice) -> None:
        image = finished_job(alice).images.first()
        page = vary(alice_client, image, HTTP_HX_REQUEST="true").content.decode()
        assert "More like this (subtle)" in page and f"seed {image.seed}" in page

    def test_an_unknown_strength_is_a_400_with_a_reason(self, alice_client, alice) -> None:
        image = finished_job(alice).images.first()
        response = vary(alice_client, image, "extreme")
        assert response.status_code == 400 and "subtle or strong" in response.json()["error"]
        assert GenerationJob.objects.count() == 1

    def test_bob_cannot_vary_alices_image(self, bob_client, alice) -> None:
        image = finished_job(alice).images.first()
        assert vary(bob_client, image).status_code == 404

    def test_the_worker_renders_variations_from_the_stored_image(self, alice_client, alice) -> None:
        image = finished_job(alice).images.first()
        vary(alice_client, image)
        job = GenerationJob.objects.latest("created_at")
        worker_run.run_job(str(job.pk), worker="gpu@test")
        job.refresh_from_db()
        assert job.status == JobStatus.COMPLETE, job.error
        assert job.images.count() == 2

    def test_a_deleted_source_image_fails_the_job_with_a_reason(self, alice_client, alice) -> None:
        image = finished_job(alice).images.first()
        vary(alice_client, image)
        job = GenerationJob.objects.latest("created_at")
        default_storage.delete(image.file.name)
        worker_run.run_job(str(job.pk), worker="gpu@test")
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED and "no longer available" in job.error

    def test_the_detail_page_shows_the_preset_version_and_variation_buttons(self, alice_client, alice) -> None:
        image = finished_job(alice).images.first()
        page = alice_client.get(reverse("image", args=[image.id])).content.decode()
        assert "Preset version" in page and 'value="subtle"' in page and 'value="strong"' in page


def test_editing_what_an_asset_type_renders_makes_a_new_version(db) -> None:
    preset = AssetPresetFactory()
    assert preset.version == 1
    preset.position = 3
    preset.save()
    assert preset.version == 1  # ordering does not change images
    preset.prompt_template = "{subject}, line icon"
    preset.save()
    assert AssetPreset.objects.get(pk=preset.pk).version == 2


def compare(client, **data):
    payload = {"prompt": "a paper plane", "quality": "draft", "variations": "2"} | data
    return client.post(reverse("compare"), payload)


class TestCompare:
    def test_one_description_across_asset_types_shares_its_seeds(self, alice_client, alice) -> None:
        a, b = AssetPresetFactory(), AssetPresetFactory()
        response = compare(alice_client, presets=[a.slug, b.slug], models=["tiny-flux"], seed="42")
        group = JobGroup.objects.get()
        assert response.status_code == 302 and response.url == group.get_absolute_url()
        assert group.kind == GroupKind.PRESETS and group.title == "a paper plane"
        jobs = list(group.jobs.order_by("created_at"))
        assert {job.preset for job in jobs} == {a, b}
        assert all(job.params["seeds"] == [42, 43] for job in jobs)

    def test_one_description_across_models_is_a_model_comparison(self, alice_client, alice) -> None:
        other = ImageModel.objects.get(key="tiny-flux")
        other.pk, other.key, other.name = None, "tiny-flux-b", "Tiny FLUX B"
        other.for_testing = False  # a copy that designers are offered
        other.save()
        preset = AssetPresetFactory()
        compare(alice_client, presets=[preset.slug], models=["tiny-flux", "tiny-flux-b"])
        group = JobGroup.objects.get()
        assert group.kind == GroupKind.MODELS
        seeds = {tuple(job.params["seeds"]) for job in group.jobs.all()}
        assert {job.model_key for job in group.jobs.all()} == {"tiny-flux", "tiny-flux-b"} and len(seeds) == 1

    @pytest.mark.parametrize(
        ("presets", "models", "message"),
        [
            (1, 1, "Pick two or more"),
            (0, 1, "Pick at least one asset type"),
            (2, 2, "not both at once"),
            (7, 1, "at most 6"),
        ],
    )
    def test_a_comparison_that_cannot_be_made_says_why(self, alice_client, presets, models, message) -> None:
        slugs = [AssetPresetFactory().slug for _ in range(presets)]
        keys = ["tiny-flux"] * models
        if models == 2:
            ImageModel.objects.create(
                key="other", name="Other", family="flux", local_path="tiny-flux", license_name="x", commercial_use=True
            )
            keys = ["tiny-flux", "other"]
        response = compare(alice_client, presets=slugs, models=keys)
        assert response.status_code == 422 and message in response.content.decode()
        assert not GenerationJob.objects.exists()

    def test_the_group_page_polls_until_every_column_has_ended(self, alice_client, alice) -> None:
        a, b = AssetPresetFactory(), AssetPresetFactory()
        compare(alice_client, presets=[a.slug, b.slug], models=["tiny-flux"])
        group = JobGroup.objects.get()
        url = reverse("group", args=[group.id])
        page = alice_client.get(url).content.decode()
        assert a.name in page and b.name in page and 'hx-trigger="every 1s"' in page
        assert alice_client.get(url, HTTP_HX_REQUEST="true").status_code == 200
        group.jobs.update(status=JobStatus.COMPLETE)
        assert alice_client.get(url, HTTP_HX_REQUEST="true").status_code == 286

    def test_bob_cannot_open_alices_comparison(self, alice_client, bob_client) -> None:
        a, b = AssetPresetFactory(), AssetPresetFactory()
        compare(alice_client, presets=[a.slug, b.slug], models=["tiny-flux"])
        group = JobGroup.objects.get()
        assert bob_client.get(reverse("group", args=[group.id])).status_code == 404
        assert bob_client.get(reverse("group-zip", args=[group.id])).status_code == 404


def batch(client, **data):
    payload = {"preset": AssetPresetFactory(slug="batch-icons").slug, "quality": "draft", "variations": "1"} | data
    return client.post(reverse("batch"), payload)


class TestBatch:
    def test_one_description_per_line_makes_one_job_each_in_one_group(self, alice_client) -> None:
        response = batch(alice_client, descriptions="a paper plane\n\n# skipped\n  a lighthouse  \na key\n")
        group = JobGroup.objects.get()
        assert response.status_code == 302 and group.kind == GroupKind.BATCH
        assert [job.prompt for job in group.jobs.order_by("created_at")] == ["a paper plane", "a lighthouse", "a key"]
        assert group.title.startswith("3 ") and group.title.endswith(" descriptions")

    @pytest.mark.parametrize(
        "content",
        [
            b"prompt,notes\na paper plane,x\na key,y\n",
            b"\xef\xbb\xbfDescription\na paper plane\na key\n",
            b"a paper plane\na key\n",
        ],
    )
    def test_a_csv_gives_its_prompt_column_or_its_first_column(self, alice_client, content) -> None:
        batch(alice_client, csv_file=SimpleUploadedFile("list.csv", content, "text/csv"))
        assert sorted(GenerationJob.objects.values_list("prompt", flat=True)) == ["a key", "a paper plane"]

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"descriptions": "  \n# nothing\n"}, "at least one description"),
            ({"descriptions": "x\n" * 51}, "at most 50"),
            ({"descriptions": "y" * 1001}, "Description 1 is over 1000"),
            ({"csv_file": SimpleUploadedFile("l.csv", "caf\xe9".encode("latin-1"))}, "not UTF-8"),
        ],
    )
    def test_a_batch_that_cannot_run_says_why_and_makes_nothing(self, alice_client, data, message) -> None:
        response = batch(alice_client, **data)
        assert response.status_code == 422 and message in response.content.decode()
        assert not GenerationJob.objects.exists() and not JobGroup.objects.exists()

    def test_the_batch_zip_holds_every_items_images(self, alice_client, alice) -> None:
        batch(alice_client, descriptions="a paper plane\na key")
        group = JobGroup.objects.get()
        for job in group.jobs.all():
            worker_run.run_job(str(job.pk), worker="gpu@test")
        response = alice_client.get(reverse("group-zip", args=[group.id]))
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        names = archive.namelist()
        assert len(names) == 2 and any("a-paper-plane" in n for n in names) and any("a-key" in n for n in names)
        for name in names:
            Image.open(io.BytesIO(archive.read(name))).verify()
        page = alice_client.get(reverse("group", args=[group.id])).content.decode()
        assert page.count('class="card group-item job-complete"') == 2


class TestSelection:
    def test_ticked_images_download_as_one_zip(self, alice_client, alice) -> None:
        first, second = finished_job(alice, "a key").images.all()[:1], finished_job(alice, "a map").images.all()[:1]
        ids = [str(first[0].id), str(second[0].id)]
        response = alice_client.get(reverse("images-zip"), {"id": ids})
        assert response.status_code == 200 and response["Content-Disposition"].endswith('"selection.zip"')
        names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
        assert len(names) == 2

    def test_a_selection_with_someone_elses_image_is_refused(self, alice_client, alice, bob) -> None:
        ids = [str(finished_job(alice).images.first().id), str(finished_job(bob).images.first().id)]
        response = alice_client.get(reverse("images-zip"), {"id": ids})
        assert response.status_code == 404 and "not yours" in response.json()["error"]

    def test_a_malformed_id_is_a_400_and_an_empty_selection_says_what_to_do(self, alice_client) -> None:
        assert alice_client.get(reverse("images-zip"), {"id": "nope"}).status_code == 400
        response = alice_client.get(reverse("images-zip"), follow=True)
        assert "Tick the images" in response.content.decode()

    def test_every_grid_image_has_a_selection_box(self, alice_client, alice) -> None:
        job = finished_job(alice)
        page = alice_client.get(reverse("job", args=[job.id])).content.decode()
        assert page.count('name="id"') == 2 and 'id="selection"' in page
