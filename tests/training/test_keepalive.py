"""While a worker trains or captions it keeps a marker in a broker list that a scale-to-zero
scaler watches (KEDA on Azure), so the worker is not stopped mid-run; the marker goes when the
work ends, and the reaper drops the marker of work whose worker was killed. Against the real
Redis broker the tests use."""

import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from kombu import Connection

from brandstudio.celery import app
from generation import tasks
from generation.models import JobStatus, TrainingRun
from generation.training import keepalive
from generation.training import lora as lora_module
from generation.training.captions import progress

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy(settings):
    """A list of the test's own on the real broker, and a reader of it."""
    settings.STUDIO_KEEPALIVE_LIST = f"test-keepalive-{uuid.uuid4().hex}"

    def markers() -> list[str]:
        with app.connection_for_write() as conn:
            return [m.decode() for m in conn.default_channel.client.lrange(settings.STUDIO_KEEPALIVE_LIST, 0, -1)]

    yield markers
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(settings.STUDIO_KEEPALIVE_LIST)


@pytest.fixture
def run(training_set) -> TrainingRun:
    return TrainingRun.objects.create(training_set=training_set, model_key="flux-schnell", params={"steps": 1})


def aged(marker: str, seconds: int = 3600) -> str:
    """The marker as if pushed `seconds` ago."""
    head, pushed = marker.rsplit(":", 1)
    return f"{head}:{int(pushed) - seconds}"


def push(marker: str, settings) -> None:
    with app.connection_for_write() as conn:
        conn.default_channel.client.rpush(settings.STUDIO_KEEPALIVE_LIST, marker)


def test_a_training_task_holds_its_marker_while_it_runs_and_drops_it_after_even_on_failure(
    busy, run, monkeypatch
) -> None:
    seen: list[list[str]] = []

    def training(run_id: str, worker: str) -> None:
        seen.append(busy())
        raise RuntimeError("out of memory")

    monkeypatch.setattr(lora_module, "run_training", training)
    with pytest.raises(RuntimeError):
        tasks.run_training_task(str(run.pk))
    [[marker]] = seen
    assert marker.startswith(f"run:{run.pk}:") and busy() == []


def test_nothing_is_written_to_the_broker_when_the_list_is_off(settings, run, monkeypatch) -> None:
    settings.STUDIO_KEEPALIVE_LIST = ""
    monkeypatch.setattr(keepalive, "_call", lambda *args: pytest.fail("the broker was asked"))
    with keepalive.held(keepalive.run_marker(str(run.pk))):
        pass
    assert keepalive.release_finished() == 0


def test_a_broker_that_does_not_answer_costs_the_hold_not_the_work(busy, run, monkeypatch, caplog) -> None:
    class Down:  # a real connection, to a port nothing listens on
        def connection_for_write(self) -> Connection:
            return Connection("redis://127.0.0.1:1/0")

    monkeypatch.setattr(keepalive, "app", Down())
    ran = []
    with keepalive.held(keepalive.run_marker(str(run.pk))):
        ran.append(True)
    assert ran == [True] and "rpush failed" in caplog.text
    assert keepalive.release_finished() == 0 and "could not be swept" in caplog.text


def test_the_reaper_drops_markers_of_work_that_stopped_and_keeps_the_rest(busy, run, training_set, settings) -> None:
    run.status, run.heartbeat_at = JobStatus.PROCESSING, timezone.now()
    run.save()
    finished = TrainingRun.objects.create(training_set=training_set, model_key="flux-schnell", params={})
    finished.status = JobStatus.FAILED
    finished.save()
    token = uuid.uuid4().hex
    state = {"token": token, "status": progress.RUNNING, "heartbeat": timezone.now().isoformat(), "captioner": {}}
    type(training_set).objects.filter(pk=training_set.pk).update(captioning=state)
    kept = [
        aged(keepalive.run_marker(str(run.pk))),  # still processing
        keepalive.run_marker(str(finished.pk)),  # just pushed: its run may not be processing yet
        aged(keepalive.captions_marker(training_set.pk, token)),  # a pass that is running
    ]
    dropped = [
        aged(keepalive.run_marker(str(finished.pk))),
        aged(keepalive.captions_marker(training_set.pk, "an-older-pass")),
        aged(keepalive.run_marker("not-a-uuid")),
        "someone else's",
        f"run:{run.pk}:not-a-time",
    ]
    for marker in kept + dropped:
        push(marker, settings)
    assert tasks.reap_stale_jobs() == 0
    assert busy() == kept


def test_a_killed_workers_run_is_reaped_and_its_marker_goes_with_it(busy, run, settings) -> None:
    run.status, run.worker = JobStatus.PROCESSING, "gpu@gone"
    run.heartbeat_at = timezone.now() - timedelta(seconds=settings.STUDIO_STALE_AFTER_SECONDS + 60)
    run.save()
    push(aged(keepalive.run_marker(str(run.pk)), seconds=settings.STUDIO_STALE_AFTER_SECONDS + 60), settings)
    assert tasks.reap_stale_jobs() == 1
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and busy() == []


def test_a_captioner_pass_holds_its_marker_too(busy, training_set, monkeypatch) -> None:
    from generation.training.captions import captioner

    seen: list[list[str]] = []
    monkeypatch.setattr(captioner, "write_captions", lambda set_id, token, worker: seen.append(busy()))
    tasks.write_training_captions(training_set.pk, "a-token")
    [[marker]] = seen
    assert marker.startswith(f"captions:{training_set.pk}:a-token:") and busy() == []
    assert abs(int(marker.rsplit(":", 1)[1]) - time.time()) < 60
