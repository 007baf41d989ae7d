"""A sketch's depth through a depth ControlNet: estimated on the worker by a depth estimator
add-on (a transformers depth-estimation folder; here a tiny Depth Anything with random weights,
read by the real loading code), previewed in the sketch box once a worker has estimated it."""

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from diffusers import FluxControlNetPipeline
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image, ImageDraw

from brandstudio.celery import app as celery_app
from generation.control.depth import store_preview
from generation.control.sketch import sketch_problem
from generation.devtools.tiny import build_tiny_controlnet, build_tiny_depth_estimator
from generation.engine.depth import depth_map
from generation.models import AddOn, AddOnKind, GenerationJob, ImageModel, InputImage, JobStatus
from generation.tokens import token_create
from generation.worker import engines as worker_engines
from generation.worker import run as worker_run
from tests.pipes import record_argument


def ball(size: int = 128) -> Image.Image:
    """A shaded ball on white: something with depth to estimate."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for step in range(10):
        inset = size // 6 + step * size // 40
        grey = 40 + step * 20
        draw.ellipse((inset, inset, size - inset, size - inset), fill=(grey, grey, grey))
    return image


def upload(image: Image.Image, name: str = "ball.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture(scope="session")
def tiny_depth_dir(tmp_path_factory) -> Path:
    return build_tiny_depth_estimator(tmp_path_factory.mktemp("depth") / "tiny-depth")


@pytest.fixture
def depth_controlnet(db, tiny_flux_dir: Path) -> AddOn:
    models = tiny_flux_dir.parent
    if not (models / "tiny-controlnet-flux").exists():
        build_tiny_controlnet(models / "tiny-controlnet-flux", tiny_flux_dir, "flux")
    return AddOn.objects.create(
        key="tiny-depth-controlnet",
        name="Tiny depth ControlNet",
        kind=AddOnKind.CONTROLNET,
        control_type="depth",
        family="flux",
        local_path="tiny-controlnet-flux",
        license_name="test",
        commercial_use=True,
    )


def estimator_row(folder: str = "tiny-depth", **fields) -> AddOn:
    values = {
        "key": "tiny-depth",
        "name": "Tiny Depth Anything",
        "kind": AddOnKind.DEPTH_ESTIMATOR,
        "family": "",
        "local_path": folder,
        "license_name": "Apache-2.0",
        "commercial_use": True,
    }
    return AddOn(**(values | fields))


@pytest.fixture
def depth_studio(depth_controlnet, tiny_depth_dir: Path, tiny_flux_dir: Path) -> AddOn:
    target = tiny_flux_dir.parent / "tiny-depth"
    if not target.exists():
        shutil.copytree(tiny_depth_dir, target)
    estimator = estimator_row()
    estimator.full_clean()
    estimator.save()
    return estimator


def studio_data(**extra) -> dict:
    data = {"preset": "test-icon", "prompt": "a ball", "model": "tiny-flux", "quality": "standard", "variations": "1"}
    return data | extra


def test_a_depth_map_is_grey_at_the_image_size_spans_black_to_white_and_is_reproducible(tiny_depth_dir) -> None:
    image = ball(96).resize((96, 72))
    depth = depth_map(image, tiny_depth_dir)
    pixels = np.asarray(depth)
    assert depth.size == (96, 72) and depth.mode == "RGB"
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    assert pixels.min() == 0 and pixels.max() == 255
    assert (np.asarray(depth_map(image, tiny_depth_dir)) == pixels).all()


def test_a_depth_estimator_a_worker_has_read_counts_in_its_memory_budget(
    tiny_depth_dir, tmp_path, settings, monkeypatch
) -> None:
    from collections import OrderedDict

    from generation.engine import depth
    from generation.engine.base import DiffusersEngine
    from generation.engine.types import GenerationRequest
    from tests.worker.test_run import FakeEngine

    monkeypatch.setattr(depth, "_read", {})
    request = GenerationRequest(
        "a ball", "", 64, 64, 4, 1.0, [1], control_edges="depth", depth_estimator=tiny_depth_dir
    )
    engine = type("Engine", (), {"_control_pipes": {}, "_ip_adapters": {}})()
    assert DiffusersEngine.unread_addons(engine, request) == [tiny_depth_dir]  # the job makes room for it
    depth_map(ball(32), tiny_depth_dir)
    assert DiffusersEngine.unread_addons(engine, request) == []  # read once per worker
    held = depth.loaded_bytes()
    assert held > 0 and worker_engines._estimator_bytes() == held
    # Two models that fit the budget only without the estimator: the older one goes.
    default, old = FakeEngine(10_000), FakeEngine(10_000)
    monkeypatch.setattr(worker_engines, "_engines", OrderedDict([("tiny-flux", default), ("old", old)]))
    settings.STUDIO_MEMORY_BUDGET_GB = (20_000 + held - 1) / 2**30
    worker_engines._make_room(0)
    assert list(worker_engines._engines) == ["tiny-flux"] and old.unloaded


@pytest.mark.django_db
def test_depth_is_not_offered_until_a_depth_estimator_is_installed(alice_client, preset, depth_controlnet) -> None:
    form = alice_client.get(reverse("studio")).content.decode()
    assert 'value="depth"' not in form
    model = ImageModel.objects.get(key="tiny-flux")
    assert "no depth estimator is installed" in sketch_problem(model, "depth")
    response = alice_client.post(
        reverse("studio"), studio_data(sketch=upload(ball()), sketch_mode="depth"), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422 and "no depth estimator is installed" in response.content.decode()
    assert not GenerationJob.objects.exists()


@pytest.mark.django_db
def test_a_depth_estimator_is_checked_when_an_admin_saves_it(depth_studio, tiny_flux_dir: Path) -> None:
    with pytest.raises(ValidationError, match="not a depth-estimation model"):
        estimator_row("tiny-controlnet-flux", key="other").full_clean()  # a ControlNet's folder
    with pytest.raises(ValidationError, match="leave the family blank"):
        estimator_row(key="other", family="flux").full_clean()
    with pytest.raises(ValidationError, match="No readable config.json"):
        estimator_row("nowhere", key="other").full_clean()
    broken = tiny_flux_dir.parent / "broken-depth"
    shutil.copytree(tiny_flux_dir.parent / "tiny-depth", broken)
    (broken / "preprocessor_config.json").unlink()
    with pytest.raises(ValidationError, match="needs its image processor"):
        estimator_row("broken-depth", key="other").full_clean()
    shutil.copy(tiny_flux_dir.parent / "tiny-depth" / "preprocessor_config.json", broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValidationError, match="cut short"):
        estimator_row("broken-depth", key="other").full_clean()
    with pytest.raises(ValidationError, match="Choose the model family"):
        AddOn(key="x", name="x", kind=AddOnKind.CONTROLNET, control_type="depth", local_path="x").full_clean()


@pytest.mark.django_db
def test_a_depth_sketch_job_follows_the_estimated_depth_map_at_the_size_the_model_draws(
    alice_client, preset, depth_studio, tiny_depth_dir, monkeypatch
) -> None:
    form = alice_client.get(reverse("studio")).content.decode()
    assert 'value="depth"' in form
    seen = record_argument(monkeypatch, FluxControlNetPipeline, "control_image")
    response = alice_client.post(
        reverse("studio"), studio_data(sketch=upload(ball()), sketch_mode="depth"), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    job = GenerationJob.objects.get()
    control = job.params["control"]
    assert control["type"] == "depth" and control["key"] == "tiny-depth-controlnet"
    assert control["depth"] == {
        "key": "tiny-depth",
        "name": "Tiny Depth Anything",
        "path": "tiny-depth",
        "license": "Apache-2.0",
        "commercial_use": True,
    }
    assert "its depth through Tiny depth ControlNet (scale 1.0)" in response.content.decode()
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE, job.error
    (given,) = seen
    pixels = np.asarray(given)
    size = given.size[0]
    expected = depth_map(ball().resize((size, size), Image.Resampling.LANCZOS), tiny_depth_dir)
    assert (pixels == np.asarray(expected)).all()  # the depth map, not the sketch
    assert job.params["model"]["commercial_use"] is True


@pytest.mark.django_db
def test_a_depth_estimator_not_for_production_marks_the_outputs(alice_client, preset, depth_studio) -> None:
    depth_studio.commercial_use = False
    depth_studio.save()
    response = alice_client.post(
        reverse("studio"), studio_data(sketch=upload(ball()), sketch_mode="depth"), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    model = GenerationJob.objects.get().params["model"]
    assert model["commercial_use"] is False and "Tiny Depth Anything" in model["license_notice"]


@pytest.mark.django_db
def test_the_sketch_box_asks_a_worker_for_the_depth_preview_and_shows_it_once_made(
    alice_client, bob, preset, depth_studio, monkeypatch
) -> None:
    sent: list = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args, **kw: sent.append((name, args, kw)))
    box = alice_client.post(reverse("sketch-box"), {"sketch": upload(ball()), "sketch_mode": "depth"})
    stored = InputImage.objects.get()
    depth_url = reverse("input-depth", args=[stored.pk])
    assert depth_url in box.content.decode()
    waiting = alice_client.get(depth_url).content.decode()
    assert "A worker is estimating its depth with Tiny Depth Anything" in waiting and "polls=1" in waiting
    assert sent == [("generation.tasks.estimate_depth_preview", (str(stored.pk), 256), {"expires": 120, "priority": 9})]
    alice_client.get(depth_url, {"polls": "1"})
    assert len(sent) == 1  # asked once
    assert alice_client.get(reverse("input-prepared", args=[stored.pk]), {"mode": "depth"}).status_code == 404
    store_preview(str(stored.pk), 256)  # what the worker's task does
    shown = alice_client.get(depth_url, {"polls": "2"}).content.decode()
    assert "?mode=depth" in shown and "<img" in shown
    preview = alice_client.get(reverse("input-prepared", args=[stored.pk]), {"mode": "depth"})
    picture = Image.open(io.BytesIO(b"".join(preview.streaming_content)))
    assert picture.size == (256, 256) and np.asarray(picture).max() == 255
    gave_up = alice_client.get(reverse("input-depth", args=[stored.pk]), {"polls": "40"})
    assert "estimating" not in gave_up.content.decode()  # made by now: the map itself
    bob_client = Client()
    bob_client.force_login(bob)
    assert bob_client.get(depth_url).status_code == 404
    assert bob_client.get(reverse("input-prepared", args=[stored.pk]), {"mode": "depth"}).status_code == 404


@pytest.mark.django_db
def test_the_api_refuses_a_depth_sketch_without_an_estimator_and_lists_depth_once_installed(
    alice, preset, depth_controlnet, tiny_depth_dir, tiny_flux_dir
) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
    stored = client.post("/api/v1/inputs", {"file": upload(ball())})
    assert stored.status_code in (200, 201), stored.content
    body = {
        "asset_type": "test-icon",
        "description": "a ball",
        "variations": 1,
        "model": "tiny-flux",
        "sketch": {"input": stored.json()["id"], "mode": "depth"},
    }
    refused = client.post("/api/v1/jobs", body, content_type="application/json")
    assert refused.status_code == 422 and "no depth estimator is installed" in refused.json()["message"]
    shutil.copytree(tiny_depth_dir, tiny_flux_dir.parent / "tiny-depth", dirs_exist_ok=True)
    estimator_row().save()
    models = {m["key"]: m for m in client.get("/api/v1/models").json()}
    assert "control:depth" in models["tiny-flux"]["can"]
    created = client.post("/api/v1/jobs", body, content_type="application/json")
    assert created.status_code == 202, created.content
    sketch = created.json()["sketch"]
    assert sketch["mode"] == "depth" and sketch["strength"] is None and sketch["control_scale"] == 1.0
    assert sketch["control"] == "tiny-depth-controlnet" and sketch["depth_estimator"] == "tiny-depth"


class TestDepthPreviewsAreFair:
    """Previews bypassed the fair-use limits: 500 asks for 100 uploads put 467 tasks on the gpu
    queue in 3.4 s and slowed other users' drafts tenfold."""

    @pytest.fixture
    def sent(self, monkeypatch) -> list:
        calls: list = []
        monkeypatch.setattr(celery_app, "send_task", lambda name, args, **kw: calls.append((name, args, kw)))
        return calls

    def sketches(self, owner, count: int) -> list[InputImage]:
        from generation.control.inputs import store_upload

        return [store_upload(owner, upload(ball(64 + i))) for i in range(count)]

    @pytest.mark.django_db
    def test_many_asks_for_many_sketches_send_a_few_previews_at_a_time(
        self, alice, alice_client, settings, depth_studio, sent
    ) -> None:
        settings.STUDIO_USER_DEPTH_PREVIEWS = 2
        inputs = self.sketches(alice, 6)
        for _ in range(5):
            for stored in inputs:
                response = alice_client.get(reverse("input-depth", args=[stored.pk]), {"polls": "0"})
                assert response.status_code == 200 and "estimating its depth" in response.content.decode()
        assert [args[0] for _, args, _ in sent] == [str(inputs[0].pk), str(inputs[1].pk)]
        store_preview(str(inputs[0].pk), 256)  # a worker made the first: the next may go
        alice_client.get(reverse("input-depth", args=[inputs[2].pk]), {"polls": "3"})
        assert [args[0] for _, args, _ in sent][-1] == str(inputs[2].pk) and len(sent) == 3

    @pytest.mark.django_db
    def test_one_users_previews_do_not_count_against_anothers(self, alice, bob, settings, depth_studio, sent) -> None:
        from generation.jobs import lifecycle

        settings.STUDIO_USER_DEPTH_PREVIEWS = 1
        mine, theirs = self.sketches(alice, 2), self.sketches(bob, 1)
        assert lifecycle.depth_preview_request(stored=mine[0], side=256)
        assert not lifecycle.depth_preview_request(stored=mine[1], side=256)
        assert lifecycle.depth_preview_request(stored=theirs[0], side=256)

    @pytest.mark.django_db
    def test_a_preview_the_queue_could_not_take_is_asked_again_at_the_next_poll(
        self, alice, depth_studio, monkeypatch
    ) -> None:
        from generation.jobs import lifecycle

        def down(*args, **kwargs):
            raise ConnectionRefusedError("broker down")

        monkeypatch.setattr(celery_app, "send_task", down)
        stored = self.sketches(alice, 1)[0]
        with pytest.raises(ConnectionRefusedError):
            lifecycle.depth_preview_request(stored=stored, side=256)
        stored.refresh_from_db()
        assert stored.depth_asked_at is None


@pytest.mark.django_db
def test_a_depth_preview_waits_behind_every_job_on_the_gpu_queue() -> None:
    """On the real broker: a preview sent first is still read after a job sent later."""
    import redis
    from django.conf import settings as django_settings

    from generation.jobs import lifecycle
    from tests.processes import flush_broker

    flush_broker()
    lifecycle.depth_preview_enqueue(InputImage(pk="00000000-0000-0000-0000-000000000001").pk, 256)
    lifecycle.job_enqueue("00000000-0000-0000-0000-000000000002")  # type: ignore[arg-type]
    with celery_app.connection_for_read() as conn:
        queue = conn.SimpleQueue("gpu")
        first, second = queue.get(timeout=2), queue.get(timeout=2)
        queue.close()
    assert first.headers["task"] == lifecycle.RUN and second.headers["task"] == lifecycle.DEPTH_PREVIEW
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
