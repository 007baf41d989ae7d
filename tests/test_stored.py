"""A file the database names but storage has lost (a moved media root, a lost blob): every download
answers 404 saying so, on pages and the API, and a zip leaves it out and lists it."""

import io
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from generation.tokens import token_create
from tests.test_workflow import finished_job

pytestmark = pytest.mark.django_db

MISSING = "missing from storage"


@pytest.fixture
def lost(alice):
    """A finished job whose first image lost its PNG, WebP, SVG and thumbnail."""
    job = finished_job(alice, images=2)
    image = job.images.order_by("index").first()
    for field, name in ((image.webp, "lost.webp"), (image.svg, "lost.svg"), (image.thumbnail, "lost-thumb.webp")):
        field.save(name, ContentFile(b"x"), save=False)
    image.save()
    for field in (image.file, image.webp, image.svg, image.thumbnail):
        default_storage.delete(field.name)
    return image


def test_every_page_download_of_a_lost_file_is_a_404_that_says_so(alice_client, lost) -> None:
    url = reverse("image-file", args=[lost.pk])
    for query in ({}, {"download": "1"}, {"format": "webp"}, {"format": "svg"}):
        response = alice_client.get(url, query)
        assert response.status_code == 404 and MISSING in response.content.decode(), query
    response = alice_client.get(reverse("image-thumbnail", args=[lost.pk]))
    assert response.status_code == 404 and MISSING in response.content.decode()


def test_every_api_download_of_a_lost_file_is_a_json_404_that_says_so(alice, lost) -> None:
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}")
    for path in ("file", "file?format=webp", "file?format=svg", "thumbnail"):
        response = api.get(f"/api/v1/images/{lost.pk}/{path}")
        assert response.status_code == 404 and MISSING in response.json()["message"], path


def test_a_zip_leaves_a_lost_file_out_and_lists_it(alice_client, lost) -> None:
    response = alice_client.get(reverse("job-zip", args=[lost.job_id]))
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    kept = lost.job.images.exclude(pk=lost.pk).get()
    assert kept.download_name in names and lost.download_name not in names
    listed = archive.read("MISSING-FILES.txt").decode()
    assert lost.download_name in listed and lost.download_name.removesuffix(".png") + ".svg" in listed
    assert archive.testzip() is None


def test_a_lost_webp_is_made_again_from_the_png_on_pages_and_the_api(alice, alice_client) -> None:
    image = finished_job(alice, images=1).images.get()
    image.webp.save("lost.webp", ContentFile(b"x"), save=True)
    default_storage.delete(image.webp.name)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}")
    for response in (
        alice_client.get(reverse("image-file", args=[image.pk]), {"format": "webp"}),
        api.get(f"/api/v1/images/{image.pk}/file?format=webp"),
    ):
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
