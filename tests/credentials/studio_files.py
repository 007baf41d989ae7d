"""Studio files for the content-credential tests: pictures big enough to carry the watermark,
stored through the worker's own write path, and what downloads and uploads need."""

import io

import numpy as np
from django.test import Client
from PIL import Image

from generation.finishing.pipeline import Finished
from generation.models import GeneratedImage, GenerationJob
from generation.tokens import token_create
from generation.worker import store as worker_store
from tests.factories import GenerationJobFactory, leased


def picture(size: int = 512, seed: int = 0) -> Image.Image:
    """Soft shapes on a gradient, like a render: the watermark's test subject."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    pixels = np.stack([200 * x + 30, 180 * y + 40, 120 * (1 - x * y) + 60], axis=-1)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, 1, 3) * [1, 1, 0.25]
        inside = (x - cx) ** 2 + (y - cy) ** 2 < r**2
        pixels[inside] = rng.uniform(20, 235, 3)
    return Image.fromarray(pixels.astype(np.uint8))


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def downloaded(response) -> bytes:
    assert response.status_code == 200, response.content[:300]
    return b"".join(response.streaming_content) if response.streaming else response.content


def stored_image(owner, *, size: int = 512, finished: bool = True, **job_fields) -> GeneratedImage:
    """An image written the way a worker writes one: the render, then its finished files (a lossy
    WebP, as illustrations get), each through worker/store.py."""
    job: GenerationJob = GenerationJobFactory(owner=owner, images_total=1, **job_fields)
    lease = leased(job)
    render = picture(size)
    [row] = worker_store.store_images(job, lease, 0, [render])
    if finished:
        changed = Finished(image=render.transpose(Image.Transpose.FLIP_LEFT_RIGHT), records=[{"stage": "palette"}])
        worker_store.write_finished(job, lease, [(row, render, changed)], lossless=False)
    return GeneratedImage.objects.select_related("job__preset").get(pk=row.pk)


def api_client(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user, name='tests')[1]}")
