"""Sketches: a designer's drawing that a job starts from, on the page, in the API, in the zip."""

import io
import math
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image, ImageDraw

from generation.control.sketch import fit_on_paper
from generation.models import GenerationJob, ImageModel, InputImage, JobStatus
from generation.tokens import token_create
from generation.worker import run as worker_run
from tests.test_workflow import finished_job

pytestmark = pytest.mark.django_db


def star_sketch(size: int = 256, *, centre: tuple[float, float] = (0.42, 0.58), fmt: str = "PNG") -> bytes:
    """A hand-drawn-looking star outline, off centre, black on white."""
    image = Image.new("RGB", (size, size), "white")
    points = []
    for k in range(10):
        angle, radius = -math.pi / 2 + k * math.pi / 5, 0.34 if k % 2 == 0 else 0.15
        points.append((size * (centre[0] + radius * math.cos(angle)), size * (centre[1] + radius * math.sin(angle))))
    ImageDraw.Draw(image).line([*points, points[0]], fill="black", width=max(2, size // 40))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def submit(client: Client, *, model: str = "tiny-flux", **extra):
    data = {"preset": "test-icon", "prompt": "a star", "model": model, "quality": "standard", "variations": "2"}
    return client.post(reverse("studio"), data | extra, HTTP_HX_REQUEST="true")


def upload(data: bytes, name: str = "star.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/png")


class TestOnThePage:
    def test_an_uploaded_sketch_is_stored_privately_and_the_job_starts_from_it(self, alice_client, preset) -> None:
        response = submit(alice_client, sketch=upload(star_sketch()), sketch_follow="loose")
        assert response.status_code == 200, response.content.decode()[:2000]
        job = GenerationJob.objects.get()
        sketch = InputImage.objects.get()
        assert job.params["sketch"]["input"] == str(sketch.pk) and job.params["sketch"]["follow"] == "loose"
        assert job.params["init_image"] == sketch.file.name and job.params["strength"] == 0.8
        body = response.content.decode()
        assert "Drawn from a sketch (star.png), used loosely" in body
        assert alice_client.get(reverse("input-file", args=[sketch.pk])).status_code == 200

    def test_the_same_drawing_twice_is_one_stored_input(self, alice_client, preset) -> None:
        submit(alice_client, sketch=upload(star_sketch()))
        submit(alice_client, sketch=upload(star_sketch(), "again.png"))
        assert InputImage.objects.count() == 1 and GenerationJob.objects.count() == 2

    def test_someone_elses_sketch_is_not_served_nor_usable(self, alice_client, alice, bob, preset) -> None:
        submit(alice_client, sketch=upload(star_sketch()))
        sketch = InputImage.objects.get()
        bob_client = Client()
        bob_client.force_login(bob)
        assert bob_client.get(reverse("input-file", args=[sketch.pk])).status_code == 404
        response = submit(bob_client, sketch_input=str(sketch.pk))
        assert response.status_code == 422 and "not one of yours" in response.content.decode()
        assert GenerationJob.objects.filter(owner=bob).count() == 0

    @pytest.mark.parametrize(
        ("data", "says"),
        [
            (b"not an image at all", "not a PNG, JPEG or WebP image"),
            (star_sketch(8), "too small to steer with"),
            (None, "pixels; the limit is 16,777,216"),
        ],
        ids=["text", "tiny", "bomb"],
    )
    def test_a_bad_upload_is_a_form_error_that_says_what_is_wrong(self, alice_client, preset, data, says) -> None:
        if data is None:  # 64 MP of nothing compresses to a few kB
            buffer = io.BytesIO()
            Image.new("1", (8000, 8000)).save(buffer, format="PNG")
            data = buffer.getvalue()
        response = submit(alice_client, sketch=upload(data, "drawing.png"))
        body = response.content.decode()
        assert response.status_code == 422 and says in body and "drawing.png" in body
        assert not GenerationJob.objects.exists() and not InputImage.objects.exists()

    def test_a_model_without_img2img_is_refused_naming_the_models_that_can(self, alice_client, preset) -> None:
        ImageModel.objects.filter(key="hidream-i1-fast").update(enabled=True)
        response = submit(alice_client, model="hidream-i1-fast", sketch=upload(star_sketch()))
        body = response.content.decode()
        assert response.status_code == 422 and "cannot start from a sketch" in body and "Demo brand" in body
        assert not GenerationJob.objects.exists()

    def test_a_form_shown_again_keeps_the_sketch_and_it_can_be_taken_off(self, alice_client, preset) -> None:
        response = submit(alice_client, sketch=upload(star_sketch()), variations="99")
        sketch = InputImage.objects.get()
        assert response.status_code == 422 and f'value="{sketch.pk}"' in response.content.decode()
        submit(alice_client, sketch_input=str(sketch.pk))
        assert GenerationJob.objects.get().params["sketch"]["input"] == str(sketch.pk)
        submit(alice_client, sketch_input=str(sketch.pk), sketch_clear="on")
        assert "sketch" not in GenerationJob.objects.latest("created_at").params

    def test_reuse_settings_brings_the_sketch_back(self, alice_client, preset) -> None:
        submit(alice_client, sketch=upload(star_sketch()))
        job = GenerationJob.objects.get()
        page = alice_client.get(reverse("job-reuse", args=[job.pk]), follow=True).content.decode()
        assert f'value="{job.params["sketch"]["input"]}"' in page and "What the model starts from: your sketch" in page

    def test_use_as_sketch_starts_a_form_from_a_studio_image(self, alice_client, alice, preset) -> None:
        image = finished_job(alice, preset=preset).images.first()
        response = alice_client.get(reverse("image-as-sketch", args=[image.pk]))
        sketch = InputImage.objects.get()
        assert response.status_code == 302 and f"sketch_input={sketch.pk}" in response["Location"]
        assert sketch.name == f"studio image {image.pk}" and (sketch.width, sketch.height) == (64, 64)

    def test_the_worker_draws_from_the_sketch_and_the_zip_carries_it(self, alice_client, preset) -> None:
        submit(alice_client, sketch=upload(star_sketch()))
        job = GenerationJob.objects.get()
        worker_run.run_job(str(job.pk), worker="gpu@test")
        job.refresh_from_db()
        assert job.status == JobStatus.COMPLETE, job.error
        names = zipfile.ZipFile(io.BytesIO(b"".join(alice_client.get(reverse("job-zip", args=[job.pk]))))).namelist()
        assert len([n for n in names if n.startswith("inputs/sketch-")]) == 1 and len(names) >= 3

    def test_a_sketch_gone_from_storage_fails_the_job_with_a_reason(self, alice_client, preset) -> None:
        submit(alice_client, sketch=upload(star_sketch()))
        job = GenerationJob.objects.get()
        InputImage.objects.get().file.delete(save=False)
        worker_run.run_job(str(job.pk), worker="gpu@test")
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED and "sketch this job starts from is no longer available" in job.error


def test_a_sketch_is_fitted_to_the_render_size_without_stretching() -> None:
    wide = Image.new("RGB", (200, 100), "black")
    fitted = fit_on_paper(wide, (64, 64))
    assert fitted.size == (64, 64)
    assert fitted.getpixel((32, 32)) == (0, 0, 0) and fitted.getpixel((32, 4)) == (255, 255, 255)


class TestInTheApi:
    @pytest.fixture
    def api(self, alice) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}")

    def job(self, api: Client, **sketch):
        body = {"asset_type": "test-icon", "description": "a star", "model": "tiny-flux", "variations": 1}
        return api.post("/api/v1/jobs", body | ({"sketch": sketch} if sketch else {}), content_type="application/json")

    def test_an_upload_then_a_job_that_names_it(self, api, preset) -> None:
        response = api.post("/api/v1/inputs", {"file": upload(star_sketch(fmt="JPEG"), "star.jpg")})
        assert response.status_code == 201, response.content
        sketch = response.json()
        again = api.post("/api/v1/inputs", {"file": upload(star_sketch(fmt="JPEG"), "star.jpg")}).json()
        assert again["id"] == sketch["id"] and sketch["width"] == 256
        assert api.get(sketch["url"].removeprefix("http://testserver")).status_code == 200
        created = self.job(api, input=sketch["id"], follow="close")
        assert created.status_code == 202, created.content
        assert created.json()["sketch"]["input"] == sketch["id"] and created.json()["sketch"]["strength"] == 0.6

    def test_a_studio_image_as_the_sketch(self, api, alice, preset) -> None:
        image = finished_job(alice, preset=preset).images.first()
        created = self.job(api, image=str(image.pk))
        assert created.status_code == 202 and created.json()["sketch"]["follow"] == "close"

    def test_bad_sketches_are_json_errors_on_the_sketch_field(self, api, bob, preset) -> None:
        not_image = api.post("/api/v1/inputs", {"file": upload(b"hello", "notes.txt")})
        assert not_image.status_code == 422 and not_image.json()["field"] == "file"
        assert "notes.txt: not a PNG, JPEG or WebP image" in not_image.json()["message"]
        bobs = InputImage.objects.create(owner=bob, sha256="0" * 64, file="inputs/x.png", width=1, height=1)
        for sketch in ({"input": str(bobs.pk)}, {}, {"input": str(bobs.pk), "image": str(bobs.pk)}):
            response = self.job(api, **sketch) if sketch else self.job(api, follow="close")
            assert response.status_code == 422 and response.json()["field"] == "sketch", response.content
        assert not GenerationJob.objects.exists()

    def test_no_file_is_a_422_and_json_to_the_upload_is_refused(self, api) -> None:
        assert api.post("/api/v1/inputs").status_code in (415, 422)
        response = api.post("/api/v1/inputs", {"file": "x"}, content_type="application/json")
        assert response.status_code in (415, 422) and "message" in response.json()


class TestThePreview:
    def test_a_chosen_file_is_stored_at_once_and_the_box_shows_what_the_model_starts_from(self, alice_client) -> None:
        response = alice_client.post(reverse("sketch-box"), {"sketch": upload(star_sketch()), "sketch_mode": "filled"})
        sketch = InputImage.objects.get()
        body = response.content.decode()
        assert response.status_code == 200 and f'value="{sketch.pk}"' in body
        assert f"{reverse('input-prepared', args=[sketch.pk])}?mode=filled" in body
        again = alice_client.get(reverse("sketch-box"), {"sketch_input": str(sketch.pk), "sketch_mode": "drawing"})
        assert "?mode=drawing" in again.content.decode()

    def test_a_bad_file_in_the_box_says_what_is_wrong(self, alice_client) -> None:
        response = alice_client.post(reverse("sketch-box"), {"sketch": upload(b"nope", "scan.png")})
        assert response.status_code == 422 and "scan.png: not a PNG, JPEG or WebP image" in response.content.decode()
        assert not InputImage.objects.exists()

    def test_filled_mode_fills_the_closed_outline_and_keeps_the_paper(self, alice_client, preset) -> None:
        submit(alice_client, sketch=upload(star_sketch(centre=(0.5, 0.5))), sketch_mode="filled")
        sketch = InputImage.objects.get()
        url = reverse("input-prepared", args=[sketch.pk])
        filled = Image.open(io.BytesIO(alice_client.get(url, {"mode": "filled"}).content)).convert("L")
        drawn = Image.open(io.BytesIO(alice_client.get(url, {"mode": "drawing"}).content)).convert("L")
        assert filled.getpixel((128, 128)) < 100 and drawn.getpixel((128, 128)) > 200  # the star's middle
        assert filled.getpixel((4, 4)) > 200  # the paper around it
        assert alice_client.get(url, {"mode": "edges"}).status_code == 400
        assert GenerationJob.objects.get().params["sketch"]["mode"] == "filled"


def test_a_studio_png_made_from_a_sketch_brings_the_sketch_back_to_its_owner(alice_client, preset) -> None:
    submit(alice_client, sketch=upload(star_sketch()), sketch_mode="filled")
    job = GenerationJob.objects.get()
    worker_run.run_job(str(job.pk), worker="gpu@test")
    image = job.images.first()
    with image.file.open("rb") as fh:
        png = fh.read()
    import json

    embedded = json.loads(Image.open(io.BytesIO(png)).info["brandstudio"])
    assert embedded["sketch"]["sha256"] == job.params["sketch"]["sha256"] and "file" not in embedded["sketch"]
    job.refresh_from_db()
    assert "file" in job.params["sketch"]  # the job's own record keeps its path
    restored = alice_client.post(reverse("image-restore"), {"image": upload(png, "made.png")}, follow=True)
    page = restored.content.decode()
    assert f'value="{job.params["sketch"]["input"]}"' in page and "?mode=filled" in page


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_same_picture_sent_twice_at_once_is_stored_once(alice, monkeypatch) -> None:
    """Uploads of one drawing racing (two tabs, a retried request): one row, one file. Each
    request is made to miss the others' row before it writes, as a real race would."""
    import threading

    from django.db import connection

    from generation.control import inputs
    from generation.control.inputs import store_upload

    monkeypatch.setattr(inputs, "_existing", lambda owner, digest: None)

    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises the writes: no race to lose")
    barrier, rows, errors = threading.Barrier(4), [], []

    def send() -> None:
        try:
            barrier.wait()
            rows.append(store_upload(alice, io.BytesIO(star_sketch()), "star.png"))
        except Exception as exc:  # noqa: BLE001 - the test reports any
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len({row.pk for row in rows}) == 1
    assert InputImage.objects.count() == 1
    folder = Path(InputImage.objects.get().file.path).parent
    assert len(list(folder.iterdir())) == 1  # the losers' files are gone
