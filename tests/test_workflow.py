"""Stars, history and zips: finding work again and taking it away."""

import io
import time
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image

from generation.models import Favorite, GeneratedImage, GenerationJob, JobStatus
from tests.factories import AssetPresetFactory, GenerationJobFactory

pytestmark = pytest.mark.django_db


def png(color: str = "blue") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(buffer, format="PNG")
    return buffer.getvalue()


def finished_job(owner, prompt: str = "a blue circle", images: int = 2, **fields) -> GenerationJob:
    job = GenerationJobFactory(owner=owner, prompt=prompt, status=JobStatus.COMPLETE, images_total=images, **fields)
    for index in range(images):
        image = GeneratedImage(job=job, index=index, seed=1000 + index, width=64, height=64)
        image.file.save(f"{index}.png", ContentFile(png()), save=True)
    return job


class TestFavorites:
    def test_a_designer_stars_and_unstars_an_image(self, alice_client, alice) -> None:
        image = finished_job(alice).images.first()
        url = reverse("image-favorite", args=[image.id])
        response = alice_client.post(url, HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and 'aria-pressed="true"' in response.content.decode()
        assert Favorite.objects.filter(user=alice, image=image).exists()
        response = alice_client.delete(url, HTTP_HX_REQUEST="true")
        assert 'aria-pressed="false"' in response.content.decode()
        assert not Favorite.objects.exists()

    def test_starring_twice_is_a_409_and_keeps_one_star(self, alice_client, alice) -> None:
        image = finished_job(alice).images.first()
        url = reverse("image-favorite", args=[image.id])
        alice_client.post(url, HTTP_HX_REQUEST="true")
        assert alice_client.post(url, HTTP_HX_REQUEST="true").status_code == 409
        assert Favorite.objects.count() == 1

    def test_bob_cannot_star_alices_image(self, bob_client, alice) -> None:
        image = finished_job(alice).images.first()
        assert bob_client.post(reverse("image-favorite", args=[image.id])).status_code == 404
        assert not Favorite.objects.exists()

    def test_the_favorites_page_lists_only_my_stars(self, alice_client, alice, bob) -> None:
        mine = finished_job(alice).images.first()
        theirs = finished_job(bob).images.first()
        Favorite.objects.create(user=alice, image=mine)
        Favorite.objects.create(user=bob, image=theirs)
        page = alice_client.get(reverse("favorites")).content.decode()
        assert str(mine.id) in page and str(theirs.id) not in page


class TestHistory:
    def test_history_filters_by_asset_type_status_search_and_stars(self, alice_client, alice) -> None:
        logo = AssetPresetFactory(slug="logo-x", name="Logo X")
        cloud = finished_job(alice, prompt="a cloud over a server")
        gear = finished_job(alice, prompt="a gear", preset=logo)
        failed = GenerationJobFactory(owner=alice, prompt="a failed rocket", status=JobStatus.FAILED)
        Favorite.objects.create(user=alice, image=gear.images.first())

        def shown(**params) -> set[str]:
            page = alice_client.get(reverse("history"), params).context["page"]
            return {job.prompt for job in page}

        assert shown() == {cloud.prompt, gear.prompt, failed.prompt}
        assert shown(preset="logo-x") == {gear.prompt}
        assert shown(status="failed") == {failed.prompt}
        assert shown(q="SERVER") == {cloud.prompt}
        assert shown(starred="1") == {gear.prompt}
        assert shown(status="nonsense") == {cloud.prompt, gear.prompt, failed.prompt}

    def test_history_pages_newest_first(self, alice_client, alice) -> None:
        for n in range(25):
            GenerationJobFactory(owner=alice, prompt=f"job {n}")
        first = alice_client.get(reverse("history")).context["page"]
        second = alice_client.get(reverse("history"), {"page": 2}).context["page"]
        assert [j.prompt for j in first][:2] == ["job 24", "job 23"] and len(second) == 5

    def test_a_100_job_history_page_takes_a_fixed_number_of_queries(
        self, alice_client, alice, django_assert_max_num_queries
    ) -> None:
        for n in range(100):
            finished_job(alice, prompt=f"job {n}", images=1)
        with django_assert_max_num_queries(12):
            response = alice_client.get(reverse("history"))
        assert response.status_code == 200 and len(response.context["page"]) == 20
        started = time.perf_counter()
        alice_client.get(reverse("history"))
        print(f"\nhistory page of 100 jobs: {(time.perf_counter() - started) * 1000:.0f} ms")


class TestZips:
    def test_a_job_downloads_as_a_zip_of_valid_pngs_with_telling_names(self, alice_client, alice) -> None:
        job = finished_job(alice, prompt="A clipboard with checkmarks!", images=3)
        response = alice_client.get(reverse("job-zip", args=[job.id]))
        assert response["Content-Type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        assert archive.testzip() is None
        assert archive.namelist() == [
            f"{job.preset.slug}-a-clipboard-with-checkmarks-seed{seed}.png" for seed in (1000, 1001, 1002)
        ]
        for name in archive.namelist():
            assert Image.open(io.BytesIO(archive.read(name))).size == (64, 64)

    def test_favorites_download_as_one_zip_with_unique_names(self, alice_client, alice) -> None:
        for job in (finished_job(alice), finished_job(alice)):  # same prompt and seeds: names collide
            for image in job.images.all():
                Favorite.objects.create(user=alice, image=image)
        response = alice_client.get(reverse("favorites-zip"))
        names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
        assert len(names) == len(set(names)) == 4

    def test_bob_gets_404_for_alices_job_zip(self, bob_client, alice) -> None:
        assert bob_client.get(reverse("job-zip", args=[finished_job(alice).id])).status_code == 404


class TestIterate:
    def test_generate_more_keeps_the_settings_with_new_seeds(self, alice_client, alice) -> None:
        job = finished_job(alice, images=2)
        response = alice_client.post(reverse("job-more", args=[job.id]), HTTP_HX_REQUEST="true")
        more = GenerationJob.objects.get(more_of=job)
        assert response.status_code == 200 and f'id="job-{more.id}"' in response.content.decode()
        assert {k: v for k, v in more.params.items() if k not in ("seeds",)} == {
            k: v for k, v in job.params.items() if k not in ("seeds",)
        }
        assert len(more.params["seeds"]) == 2 and more.params["seeds"] != job.params["seeds"]

    def test_tweak_prompt_fills_the_form_with_the_jobs_settings(self, alice_client, alice) -> None:
        job = finished_job(alice, prompt="a gear")
        response = alice_client.get(reverse("job-reuse", args=[job.id]), follow=True)
        initial = response.context["form"].initial
        assert initial["prompt"] == "a gear" and initial["preset"] == job.preset.slug
        assert initial["model"] == "tiny-flux" and initial["size"] == "64x64" and initial["variations"] == "2"

    def test_reuse_settings_from_an_image_brings_its_seed(self, alice_client, alice) -> None:
        image = finished_job(alice).images.last()
        response = alice_client.get(reverse("image-reuse", args=[image.id]), follow=True)
        assert response.context["form"].initial["seed"] == str(image.seed)

    def test_bob_cannot_reuse_or_extend_alices_jobs(self, bob_client, alice) -> None:
        job = finished_job(alice)
        assert bob_client.post(reverse("job-more", args=[job.id])).status_code == 404
        assert bob_client.get(reverse("job-reuse", args=[job.id])).status_code == 404
        assert bob_client.get(reverse("image-reuse", args=[job.images.first().id])).status_code == 404
        assert GenerationJob.objects.count() == 1


class TestRestoreFromPng:
    def test_a_studio_png_restores_its_settings(self, alice_client, alice) -> None:
        from generation.worker import run as worker_run

        job = GenerationJobFactory(owner=alice, prompt="a clipboard", images_total=1)
        worker_run.run_job(str(job.pk), worker="gpu@test")
        image = job.images.get()
        upload = ContentFile(image.file.read(), name="from-figma.png")
        response = alice_client.post(reverse("image-restore"), {"image": upload}, follow=True)
        initial = response.context["form"].initial
        assert initial["prompt"] == "a clipboard" and initial["seed"] == str(image.seed)
        assert initial["preset"] == job.preset.slug and initial["size"] == "64x64"

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"not an image at all", "That is not a PNG image."),
            (png(), "carries no Brand Studio settings"),
        ],
    )
    def test_other_files_are_refused_with_a_reason(self, alice_client, content, message) -> None:
        response = alice_client.post(
            reverse("image-restore"), {"image": ContentFile(content, name="x.png")}, follow=True
        )
        assert message in response.content.decode()


class TestLicenseOnDownloads:
    def test_images_of_a_non_production_model_carry_the_notice(self, alice_client, alice) -> None:
        job = finished_job(alice, images=1)
        job.params["model"] = {"name": "FLUX.1 [dev]", "commercial_use": False, "license_notice": "Reference only."}
        job.save()
        image = job.images.get()
        assert "Reference only." in alice_client.get(reverse("image", args=[image.id])).content.decode()
        response = alice_client.get(reverse("job-zip", args=[job.id]))
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        notice = archive.read("LICENSE-NOTICES.txt").decode()
        assert "Reference only." in notice and image.download_name in notice

    def test_images_of_a_commercial_model_have_no_notice_file(self, alice_client, alice) -> None:
        job = finished_job(alice, images=1)
        response = alice_client.get(reverse("job-zip", args=[job.id]))
        assert "LICENSE-NOTICES.txt" not in zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()


def test_an_image_downloads_as_lossless_webp(alice_client, alice) -> None:
    image = finished_job(alice, images=1).images.get()
    response = alice_client.get(reverse("image-file", args=[image.id]), {"format": "webp", "download": "1"})
    assert response["Content-Type"] == "image/webp" and response["Content-Disposition"].endswith('.webp"')
    webp = Image.open(io.BytesIO(response.content))
    assert webp.format == "WEBP" and webp.size == (64, 64)
    assert webp.convert("RGB").getpixel((10, 10)) == (0, 0, 255)
