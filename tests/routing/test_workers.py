"""What a GPU worker advertises for routing: its own queue, the models its pool process holds after
each load and unload, the memory they leave free, and a stamp that keeps it live."""

import threading
from collections import OrderedDict
from datetime import timedelta
from types import SimpleNamespace

import pytest
from celery.app.amqp import Queues
from django.conf import settings
from django.utils import timezone
from kombu import Queue

from generation.jobs import lifecycle
from generation.models import ImageModel, WorkerState
from generation.routing import workers as routing
from generation.routing.choice import queue_for
from generation.routing.cycle import SHARED, OwnQueueFirst
from generation.worker import engines as worker_engines
from generation.worker import signals

pytestmark = pytest.mark.django_db


def started(queues: list[str], monkeypatch) -> Queues:
    """The queues a worker started with `-Q <queues>` takes from, once its start-up hooks ran."""
    monkeypatch.setattr(signals, "_routed_node", "")
    known = Queues([Queue(name) for name in ("gpu", "training", "maintenance")])
    known.select(queues)
    instance = SimpleNamespace(app=SimpleNamespace(amqp=SimpleNamespace(queues=known)))
    signals.take_own_queue(sender="gpu@host", instance=instance)
    return known


def test_a_worker_that_takes_jobs_also_takes_from_a_queue_of_its_own(monkeypatch) -> None:
    queues = started(["gpu", "training"], monkeypatch)
    assert set(queues.consume_from) == {"gpu", "training", "gpu@host.dq"}
    assert signals._routed_node == "gpu@host"


def test_a_maintenance_worker_has_no_queue_of_its_own_and_advertises_nothing(monkeypatch) -> None:
    queues = started(["maintenance"], monkeypatch)
    assert set(queues.consume_from) == {"maintenance"} and not signals._routed_node
    signals.start_advertising()  # its pool process: no thread, no row
    assert not WorkerState.objects.exists()


@pytest.fixture
def advertising(monkeypatch):
    """This process as the pool process of gpu@test, holding nothing yet."""
    monkeypatch.setattr(worker_engines, "_engines", OrderedDict())
    monkeypatch.setattr(worker_engines, "_card_plans", {})
    monkeypatch.setattr(worker_engines, "_node", "")
    monkeypatch.setattr(worker_engines, "_estimator_bytes", lambda: 0)
    worker_engines.advertise_for("gpu@test")
    return WorkerState.objects.get(node="gpu@test")


def test_the_pool_process_advertises_the_models_it_holds_after_each_load_and_unload(advertising, settings) -> None:
    assert advertising.holds == [] and advertising.queue == "gpu@test.dq" and not advertising.leaving
    engine = worker_engines.load_engine("tiny-flux")
    row = WorkerState.objects.get(node="gpu@test")
    assert row.holds == ["tiny-flux"] and row.card == "cpu"
    assert row.free_bytes == int(settings.STUDIO_MEMORY_BUDGET_GB * 2**30) - engine.memory_bytes
    assert queue_for(model_key="tiny-flux", shared="gpu") == "gpu@test.dq"
    twin = ImageModel.objects.get(key="tiny-flux")
    twin.pk, twin.key = None, "tiny-flux-twin"  # the same folder under another key
    twin.save()
    settings.STUDIO_MEMORY_BUDGET_GB = engine.memory_bytes * 1.5 / 2**30  # room for one of them
    worker_engines.load_engine("tiny-flux-twin")
    assert WorkerState.objects.get(node="gpu@test").holds == ["tiny-flux-twin"]


def test_the_stamp_keeps_the_worker_live_and_writes_its_row_again_when_it_is_gone(advertising, settings) -> None:
    settings.STUDIO_STALE_AFTER_SECONDS = 30
    WorkerState.objects.update(seen_at=timezone.now() - timedelta(seconds=60))
    assert not routing.live_workers().exists()
    signals.stamp("gpu@test")
    assert routing.live_workers().get().node == "gpu@test"
    WorkerState.objects.all().delete()  # a reset database
    signals.stamp("gpu@test")
    assert routing.live_workers().get().queue == "gpu@test.dq"


def test_a_worker_shutting_down_says_so_from_a_thread_of_its_own(advertising, monkeypatch) -> None:
    monkeypatch.setattr(signals, "_routed_node", "gpu@test")
    forgotten = threading.Event()
    monkeypatch.setattr(signals, "_forget", lambda node: forgotten.set())
    signals.stop_being_routed(sender="gpu@test")
    assert forgotten.wait(5)


def test_a_worker_reads_its_own_queue_just_before_the_shared_one_and_the_others_still_get_turns() -> None:
    cycle = OwnQueueFirst()
    cycle.update(["gpu", "training", "maintenance", "gpu@host.dq"])
    assert cycle.consume(4) == ["gpu@host.dq", "gpu", "training", "maintenance"]
    cycle.rotate("gpu@host.dq")  # took a job of its own: the pair's turn is over
    assert cycle.consume(4) == ["training", "maintenance", "gpu@host.dq", "gpu"]
    cycle.rotate("maintenance")  # the reaper ran
    assert cycle.consume(4) == ["training", "gpu@host.dq", "gpu", "maintenance"]
    cycle.rotate("gpu")
    assert cycle.consume(4) == ["training", "maintenance", "gpu@host.dq", "gpu"]


def test_the_shared_queue_the_cycle_pairs_with_is_the_jobs_queue() -> None:
    routes = settings.CELERY_TASK_ROUTES
    assert SHARED == routes[lifecycle.RUN]["queue"] == routes[lifecycle.FINISH]["queue"]
