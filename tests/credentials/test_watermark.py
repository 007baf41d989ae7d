"""The watermark: written by the worker into every stored file of an image, read back after the
file was re-saved as PNG or WebP and resized to half; never found where it was not written."""

import io
import uuid

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from generation.credentials import watermark
from generation.finishing.pipeline import Finished
from generation.models import GeneratedImage
from generation.worker import store as worker_store
from tests.credentials.studio_files import downloaded, encoded, picture, stored_image
from tests.factories import leased

pytestmark = pytest.mark.django_db


def opened_picture(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def short_id(image: GeneratedImage) -> str:
    return str(image.pk).replace("-", "")[:8]


def test_the_worker_writes_the_images_short_id_into_its_stored_png_and_webp(alice) -> None:
    image = stored_image(alice)
    for field in (image.file, image.rendered, image.webp):
        with field.open("rb") as fh:
            found = watermark.detect(Image.open(fh))
        assert found is not None and found.short_id == short_id(image), field.name


def test_the_mark_survives_a_png_and_webp_round_trip_and_a_resize_to_half(alice, alice_client) -> None:
    image = stored_image(alice)
    served = opened_picture(downloaded(alice_client.get(reverse("image-file", args=[image.pk]), {"download": "1"})))
    half = served.resize((served.width // 2, served.height // 2), Image.Resampling.LANCZOS)
    copies = {
        "png": encoded(served, "PNG"),
        "webp lossy": encoded(served, "WEBP", quality=80),
        "webp lossless": encoded(served, "WEBP", lossless=True),
        "half, png": encoded(half, "PNG"),
        "half, webp": encoded(half, "WEBP", quality=90),
    }
    for name, data in copies.items():
        found = watermark.detect(opened_picture(data))
        assert found is not None and found.short_id == short_id(image), name


def test_a_picture_that_was_never_marked_has_no_mark() -> None:
    noise = Image.fromarray(np.random.default_rng(3).integers(0, 255, (512, 512, 3), dtype=np.uint8))
    for unmarked in (picture(seed=1), picture(768, seed=2), noise, Image.new("RGB", (600, 400), "white")):
        assert watermark.detect(unmarked) is None


def test_an_image_too_small_for_the_mark_is_stored_as_rendered() -> None:
    small = picture(128)
    assert watermark.embed(small, uuid.uuid4()) is small


def test_the_mark_leaves_the_alpha_channel_as_it_was() -> None:
    cut_out = picture().convert("RGBA")
    alpha = np.full((512, 512), 255, dtype=np.uint8)
    alpha[:100] = 0  # the cut-out part
    cut_out.putalpha(Image.fromarray(alpha))
    marked = watermark.embed(cut_out, uuid.uuid4())
    assert marked.mode == "RGBA" and np.array_equal(np.asarray(marked)[..., 3], alpha)


def test_the_mark_moves_no_pixel_by_more_than_two_grey_levels() -> None:
    original = picture()
    marked = watermark.embed(original, uuid.uuid4())
    difference = np.abs(np.asarray(marked, dtype=np.int16) - np.asarray(original, dtype=np.int16))
    assert 0 < difference.max() <= watermark.AMPLITUDE


def test_finishing_that_changed_no_pixel_still_keeps_the_render_as_the_png(alice) -> None:
    image = stored_image(alice, finished=False)
    render = picture()  # as the engine drew it, before the store marked it
    png = image.file.name
    worker_store.write_finished(image.job, leased(image.job), [(image, render, Finished(image=render))], lossless=True)
    image.refresh_from_db()
    assert image.file.name == png and image.webp
    with image.webp.open("rb") as fh:
        assert watermark.detect(Image.open(fh)).short_id == short_id(image)
