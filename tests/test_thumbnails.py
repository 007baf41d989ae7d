"""Grid thumbnails: made when a worker stores an image, served to its owner only, used by every
list page and the API, and made afterwards for old images by `manage.py make_thumbnails`."""

import io
import re
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from PIL import Image

from generation.models import Favorite, GeneratedImage, GenerationJob, JobGroup
from generation.thumbnails import THUMBNAIL_SIDE
from generation.tokens import token_create
from generation.worker import store as worker_store
from tests.factories import GenerationJobFactory, leased
from tests.test_workflow import finished_job

pytestmark = pytest.mark.django_db


def stored_job(owner, *images: Image.Image):
    """A job whose images went through the worker's store_images, as a real run stores them."""
    job = GenerationJobFactory(owner=owner, images_total=len(images))
    worker_store.store_images(job, leased(job), 0, list(images))
    GenerationJob.objects.filter(pk=job.pk).update(status="complete")
    return job


def opened(name: str) -> Image.Image:
    with default_storage.open(name) as fh:
        image = Image.open(fh)
        image.load()
    return image


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def img_sources(html: str) -> list[str]:
    """The images a page loads, without query strings (a thumbnail's URL carries its version)."""
    return [src.split("?")[0] for src in re.findall(r'<img[^>]* src="([^"]+)"', html)]


class TestStoring:
    def test_a_stored_image_gets_a_webp_thumbnail_of_at_most_384_px_keeping_its_shape(self, alice) -> None:
        image = stored_job(alice, Image.new("RGB", (1024, 512), "orange")).images.get()
        thumbnail = opened(image.thumbnail.name)
        assert thumbnail.format == "WEBP" and thumbnail.size == (THUMBNAIL_SIDE, 192) == (384, 192)
        assert opened(image.file.name).size == (1024, 512)  # the PNG stays full size

    def test_the_thumbnail_is_private_like_its_png_next_to_it(self, alice) -> None:
        image = stored_job(alice, Image.new("RGB", (64, 64))).images.get()
        assert image.thumbnail.name.rsplit("/", 1)[0] == image.file.name.rsplit("/", 1)[0]
        assert image.thumbnail.name.startswith(f"generations/{alice.pk}/")

    def test_a_small_image_is_not_scaled_up(self, alice) -> None:
        image = stored_job(alice, Image.new("RGB", (64, 64))).images.get()
        assert opened(image.thumbnail.name).size == (64, 64)

    def test_a_transparent_image_keeps_its_transparency(self, alice) -> None:
        source = Image.new("RGBA", (800, 800), (255, 0, 0, 0))
        source.paste((255, 0, 0, 255), (0, 0, 400, 800))
        thumbnail = opened(stored_job(alice, source).images.get().thumbnail.name)
        assert thumbnail.mode == "RGBA"
        assert thumbnail.getpixel((10, 10))[3] == 255 and thumbnail.getpixel((380, 10))[3] == 0


class TestServing:
    def test_the_owner_gets_the_webp_cached_privately(self, alice_client, alice) -> None:
        image = stored_job(alice, Image.new("RGB", (512, 512))).images.get()
        response = alice_client.get(reverse("image-thumbnail", args=[image.pk]))
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
        assert re.fullmatch(r"private, max-age=\d+", response["Cache-Control"])
        assert Image.open(io.BytesIO(body(response))).size == (384, 384)

    def test_another_users_thumbnail_is_a_404(self, bob_client, alice) -> None:
        image = stored_job(alice, Image.new("RGB", (64, 64))).images.get()
        assert bob_client.get(reverse("image-thumbnail", args=[image.pk])).status_code == 404

    def test_an_image_from_before_thumbnails_shows_its_png_until_backfilled(self, alice_client, alice) -> None:
        image = finished_job(alice, images=1).images.get()
        assert not image.thumbnail
        response = alice_client.get(reverse("image-thumbnail", args=[image.pk]))
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert body(response).startswith(b"\x89PNG")

    def test_a_thumbnail_gone_from_storage_falls_back_to_the_png(self, alice_client, alice) -> None:
        image = stored_job(alice, Image.new("RGB", (64, 64))).images.get()
        default_storage.delete(image.thumbnail.name)
        response = alice_client.get(reverse("image-thumbnail", args=[image.pk]))
        assert response.status_code == 200 and response["Content-Type"] == "image/png"


class TestPages:
    """Every list of images loads thumbnails; only the image page shows the full PNG."""

    def test_a_grid_asks_for_a_new_thumbnail_once_finishing_replaced_the_renders(self, alice_client, alice) -> None:
        job = finished_job(alice, images=1)
        image = job.images.get()
        GeneratedImage.objects.filter(pk=image.pk).update(thumbnail="generations/render-thumb.webp")
        before = re.findall(r'src="([^"]*thumbnail[^"]*)"', alice_client.get(reverse("job", args=[job.pk])).text)
        GeneratedImage.objects.filter(pk=image.pk).update(thumbnail="generations/finished-thumb.webp")
        after = re.findall(r'src="([^"]*thumbnail[^"]*)"', alice_client.get(reverse("job", args=[job.pk])).text)
        assert before and after and before != after  # browsers cache a thumbnail URL for a week

    def assert_thumbnails_only(self, html: str, images) -> None:
        sources = img_sources(html)
        for image in images:
            assert reverse("image-thumbnail", args=[image.pk]) in sources
            assert reverse("image-file", args=[image.pk]) not in sources

    def test_the_job_grid_shows_thumbnails(self, alice_client, alice) -> None:
        job = finished_job(alice)
        self.assert_thumbnails_only(alice_client.get(job.get_absolute_url()).content.decode(), job.images.all())

    def test_the_studio_and_history_show_thumbnails(self, alice_client, alice) -> None:
        job = finished_job(alice)
        for page in ("studio", "history"):
            self.assert_thumbnails_only(alice_client.get(reverse(page)).content.decode(), job.images.all())

    def test_favorites_show_thumbnails(self, alice_client, alice) -> None:
        image = finished_job(alice).images.first()
        Favorite.objects.create(user=alice, image=image)
        self.assert_thumbnails_only(alice_client.get(reverse("favorites")).content.decode(), [image])

    def test_a_batch_or_comparison_page_shows_thumbnails(self, alice_client, alice) -> None:
        group = JobGroup.objects.create(owner=alice, kind="batch", title="Batch")
        job = finished_job(alice, group=group)
        html = alice_client.get(reverse("group", args=[group.pk])).content.decode()
        self.assert_thumbnails_only(html, job.images.all())

    def test_the_image_page_still_shows_the_full_png(self, alice_client, alice) -> None:
        image = finished_job(alice).images.first()
        html = alice_client.get(reverse("image", args=[image.pk])).content.decode()
        assert img_sources(html) == [reverse("image-file", args=[image.pk])]


class TestBackfill:
    def run(self) -> tuple[str, str]:
        out, err = StringIO(), StringIO()
        call_command("make_thumbnails", stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    def test_old_images_get_their_thumbnails_once(self, alice) -> None:
        job = finished_job(alice, images=2)
        out, err = self.run()
        assert "2/2" in out and "Made 2 thumbnail(s); skipped 0" in out and err == ""
        names = set()
        for image in job.images.all():
            assert opened(image.thumbnail.name).format == "WEBP"
            names.add(image.thumbnail.name)
        out, _ = self.run()  # again: nothing left to do, nothing rewritten
        assert "Made 0 thumbnail(s)" in out
        assert {image.thumbnail.name for image in job.images.all()} == names

    def test_images_that_have_one_are_left_alone(self, alice) -> None:
        image = stored_job(alice, Image.new("RGB", (64, 64))).images.get()
        name = image.thumbnail.name
        assert "Made 0 thumbnail(s)" in self.run()[0]
        image.refresh_from_db()
        assert image.thumbnail.name == name

    def test_an_unreadable_file_is_skipped_with_a_warning_and_the_rest_are_made(self, alice) -> None:
        job = finished_job(alice, images=2)
        broken, good = job.images.all()
        broken.file.save("broken.png", ContentFile(b"not a png"), save=True)
        default_storage.delete(good.file.name)
        GeneratedImage.objects.filter(pk=good.pk).update(file=good.file.name)  # gone from storage
        healthy = finished_job(alice, images=1).images.get()
        out, err = self.run()
        assert f"Skipped image {broken.pk}" in err and f"Skipped image {good.pk}" in err
        assert "Made 1 thumbnail(s); skipped 2 unreadable" in out
        healthy.refresh_from_db()
        assert healthy.thumbnail and not GeneratedImage.objects.get(pk=broken.pk).thumbnail


class TestApi:
    @pytest.fixture
    def api(self, alice) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")

    def test_every_image_carries_a_thumbnail_url_that_serves_the_webp(self, api, alice) -> None:
        job = stored_job(alice, Image.new("RGB", (1024, 1024)))
        image = api.get(f"/api/v1/jobs/{job.pk}").json()["images"][0]
        assert image["thumbnail_url"] == f"http://testserver/api/v1/images/{image['id']}/thumbnail"
        response = api.get(image["thumbnail_url"])
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
        assert Image.open(io.BytesIO(body(response))).size == (384, 384)

    def test_history_and_favorites_carry_it_too(self, api, alice) -> None:
        image = stored_job(alice, Image.new("RGB", (64, 64))).images.get()
        Favorite.objects.create(user=alice, image=image)
        assert api.get("/api/v1/favorites").json()[0]["thumbnail_url"].endswith(f"/images/{image.pk}/thumbnail")
        history = api.get("/api/v1/history").json()
        assert history["jobs"][0]["images"][0]["thumbnail_url"].endswith(f"/images/{image.pk}/thumbnail")

    def test_another_users_thumbnail_is_a_404_with_a_message(self, bob, alice) -> None:
        image = stored_job(alice, Image.new("RGB", (64, 64))).images.get()
        bob_api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=bob, name='b')[1]}")
        response = bob_api.get(f"/api/v1/images/{image.pk}/thumbnail")
        assert response.status_code == 404 and response.json()["message"]

    def test_the_schema_documents_the_thumbnail_and_its_content_types(self, api) -> None:
        schema = api.get("/api/v1/openapi.json").json()
        operation = schema["paths"]["/api/v1/images/{image_id}/thumbnail"]["get"]
        assert set(operation["responses"]["200"]["content"]) == {"image/webp", "image/png"}
        assert "thumbnail_url" in schema["components"]["schemas"]["ImageOut"]["required"]


def test_the_admin_shows_a_jobs_thumbnails_without_offering_to_replace_them(client, alice) -> None:
    from django.contrib.auth import get_user_model

    job = stored_job(alice, Image.new("RGB", (64, 64)))
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "x"))
    html = client.get(reverse("admin:generation_generationjob_change", args=[job.pk])).content.decode()
    assert "-thumb.webp" in html and 'name="images-0-thumbnail"' not in html
