"""Every upload path reads images through one function (generation/uploads.read_image): what
phones and cameras write (MPO JPEGs) is taken, and whatever Pillow raises becomes the reason."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from generation.models import AssetPreset, InputImage, TrainingSet
from generation.tokens import token_create
from generation.uploads import UploadError, read_image
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def mpo() -> bytes:
    """A two-frame MPO, as a phone writes: the picture first, then a second view."""
    buffer = io.BytesIO()
    first, second = Image.new("RGB", (64, 48), "red"), Image.new("RGB", (64, 48), "blue")
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    return buffer.getvalue()


def webp_claiming(side: int) -> bytes:
    """A few bytes of lossless WebP whose header claims side x side pixels (past Pillow's own bomb limit)."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), "red").save(buffer, "WEBP", lossless=True)
    data = bytearray(buffer.getvalue())
    at = data.find(b"VP8L") + 9  # after the chunk's size and its 0x2f signature: 14 bits each, less one
    rest = int.from_bytes(data[at : at + 4], "little") & ~((1 << 28) - 1)
    data[at : at + 4] = ((side - 1) | (side - 1) << 14 | rest).to_bytes(4, "little")
    return bytes(data)


def test_an_mpo_is_read_as_its_first_frame_and_a_webp_bomb_is_refused_with_the_reason() -> None:
    image, extension = read_image(mpo(), max_bytes=2**20)
    assert extension == "jpg" and image.size == (64, 48) and image.convert("RGB").getpixel((0, 0))[0] > 200
    with pytest.raises(UploadError, match="the limit is 16,777,216"):
        read_image(webp_claiming(16383), max_bytes=2**20, max_pixels=4096 * 4096)


def test_the_api_takes_an_mpo_sketch_and_refuses_a_webp_bomb_as_a_422(alice) -> None:
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}")
    taken = api.post("/api/v1/inputs", {"file": SimpleUploadedFile("phone.jpg", mpo())})
    assert taken.status_code == 201 and (taken.json()["width"], taken.json()["height"]) == (64, 48)
    for kind in ("sketch", "mask"):
        refused = api.post(
            f"/api/v1/inputs?kind={kind}", {"file": SimpleUploadedFile("bomb.webp", webp_claiming(16383))}
        )
        assert refused.status_code == 422 and "bomb.webp: its header claims" in refused.json()["message"]


def test_the_sketch_box_and_the_training_set_page_say_what_is_wrong(alice_client) -> None:
    box = alice_client.post(reverse("sketch-box"), {"sketch": SimpleUploadedFile("bomb.webp", webp_claiming(16383))})
    assert box.status_code == 422 and "bomb.webp: its header claims" in box.content.decode()
    assert alice_client.post(reverse("sketch-box"), {"sketch": SimpleUploadedFile("p.jpg", mpo())}).status_code == 200
    assert InputImage.objects.count() == 1
    UserFactory(username="sam", is_staff=True, is_superuser=True)
    staff = Client()
    assert staff.login(username="sam", password=PASSWORD)
    training_set = TrainingSet.objects.create(name="Icons", preset=AssetPreset.objects.get(slug="icon"), family="flux")
    files = [SimpleUploadedFile("bomb.webp", webp_claiming(16383)), SimpleUploadedFile("phone.jpg", mpo())]
    page = staff.post(training_set.get_absolute_url(), {"files": files}, follow=True).content.decode()
    assert "bomb.webp: its header claims" in page
    assert [image.original_name for image in training_set.images.all()] == ["phone.jpg"]


def test_a_picture_far_wider_than_tall_is_refused_at_upload_not_on_the_worker(alice) -> None:
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}")

    def png(width: int, height: int) -> SimpleUploadedFile:
        buffer = io.BytesIO()
        Image.new("RGB", (width, height), "white").save(buffer, "PNG")
        return SimpleUploadedFile("strip.png", buffer.getvalue())

    refused = api.post("/api/v1/inputs", {"file": png(100000, 16)})
    assert (
        refused.status_code == 422
        and "100000×16 px is 6250:1; a picture to steer with may be at most 8:1" in (refused.json()["message"])
    )
    assert api.post("/api/v1/inputs", {"file": png(16, 128)}).status_code == 201
    assert not InputImage.objects.filter(width__gt=8 * 16).exists()
