"""Routing: a job goes to the own queue of a worker that holds its model; to the shared queue, or an
idle worker, when none can take it; and users still take turns (jobs/lifecycle.dispatch)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from generation.jobs import lifecycle
from generation.models import GenerationJob, JobStatus, WorkerState
from generation.routing import workers as routing
from generation.routing.choice import queue_for as route
from tests.factories import GenerationJobFactory

pytestmark = pytest.mark.django_db

GB = 2**30


def worker(node: str, *holds: str, free_gb: float = 10, seen: float = 0, leaving: bool = False) -> WorkerState:
    """A worker's advertisement, stamped `seen` seconds ago."""
    routing.advertise(node=node, holds=list(holds), free_bytes=int(free_gb * GB), card="cpu", pid=1, start=True)
    WorkerState.objects.filter(node=node).update(seen_at=timezone.now() - timedelta(seconds=seen), leaving=leaving)
    return WorkerState.objects.get(node=node)


def waiting_on(queue: str, count: int, model: str = "flux") -> None:
    """Jobs sent to `queue` and not yet claimed."""
    for _ in range(count):
        GenerationJobFactory(model_key=model, queue=queue, dispatched_at=timezone.now())


def queue_for(model: str) -> str:
    return route(model_key=model, shared="gpu")


def running_on(node: str, model: str = "flux") -> None:
    GenerationJobFactory(model_key=model, status=JobStatus.PROCESSING, worker=node, dispatched_at=timezone.now())


@pytest.fixture
def sent(monkeypatch) -> list:
    """The broker messages sent, in order: (job id, queue or None for the task's route)."""
    messages: list = []
    monkeypatch.setattr(
        lifecycle, "send_task", lambda task, job_id, **options: messages.append((job_id, options.get("queue")))
    )
    return messages


def test_a_job_goes_to_the_own_queue_of_the_worker_holding_its_model() -> None:
    worker("gpu@one", "sdxl")
    worker("gpu@two", "flux")
    running_on("gpu@one", "sdxl")
    assert queue_for("flux") == "gpu@two.dq"
    assert queue_for("sdxl") == "gpu@one.dq"  # busy, but nothing waits there


def test_of_two_holders_the_one_with_fewer_jobs_ahead_gets_it() -> None:
    worker("gpu@one", "flux")
    worker("gpu@two", "flux")
    waiting_on("gpu@one.dq", 1)
    assert queue_for("flux") == "gpu@two.dq"
    waiting_on("gpu@two.dq", 1)
    running_on("gpu@two")
    assert queue_for("flux") == "gpu@one.dq"  # as many wait; one runs nothing


def test_when_no_worker_holds_the_model_and_none_is_idle_the_one_with_fewest_jobs_ahead_loads_it() -> None:
    worker("gpu@one", "sdxl")
    worker("gpu@two", "zimage")
    running_on("gpu@one", "sdxl")
    waiting_on("gpu@one.dq", 1, "sdxl")
    running_on("gpu@two", "zimage")
    assert queue_for("flux") == "gpu@two.dq"


def test_when_no_worker_holds_the_model_the_idle_worker_with_most_memory_free_gets_it() -> None:
    worker("gpu@one", "sdxl", free_gb=2)
    worker("gpu@two", "zimage", free_gb=12)
    worker("gpu@three", "sd3", free_gb=30)
    running_on("gpu@three", "sd3")
    assert queue_for("flux") == "gpu@two.dq"


def test_a_busy_studio_sends_a_holder_its_models_jobs_however_many_wait(settings) -> None:
    settings.STUDIO_ROUTING_BACKLOG = 2
    worker("gpu@one", "flux")
    worker("gpu@two", "sdxl")
    running_on("gpu@one")
    running_on("gpu@two", "sdxl")
    waiting_on("gpu@two.dq", 1, "sdxl")
    waiting_on("gpu@one.dq", 5)
    assert queue_for("flux") == "gpu@one.dq"  # two has work of its own: no reload


def test_with_no_worker_live_a_job_goes_to_the_shared_queue() -> None:
    worker("gpu@gone", "flux", seen=600)
    assert queue_for("flux") == "gpu"


def test_a_holder_gone_stale_or_shutting_down_is_passed_over(settings) -> None:
    settings.STUDIO_STALE_AFTER_SECONDS = 30
    worker("gpu@stale", "flux", seen=31)
    worker("gpu@leaving", "flux", leaving=True)
    worker("gpu@busy", "sdxl")
    running_on("gpu@busy", "sdxl")
    assert queue_for("flux") == "gpu@busy.dq"  # the only live one
    worker("gpu@stale", "flux", seen=29)
    assert queue_for("flux") == "gpu@stale.dq"


def test_with_routing_off_every_job_goes_to_the_shared_queue(settings) -> None:
    settings.STUDIO_ROUTING = False
    worker("gpu@one", "flux")
    assert queue_for("flux") == "gpu"


def test_dispatch_sends_each_job_to_its_holder_and_records_the_queue(
    alice, sent, django_capture_on_commit_callbacks
) -> None:
    worker("gpu@one", "tiny-flux")
    worker("gpu@two", "tiny-sdxl")
    worker("gpu@three", "tiny-sd3")
    for n in range(3):  # nothing runs yet: none is idle once one job waits on each
        running_on(f"gpu@{['one', 'two', 'three'][n]}", "x")
    flux = GenerationJobFactory(owner=alice, model_key="tiny-flux")
    sdxl = GenerationJobFactory(owner=alice, model_key="tiny-sdxl")
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.dispatch(user_id=alice.pk)
    assert sent == [(str(flux.pk), "gpu@one.dq"), (str(sdxl.pk), "gpu@two.dq")]
    assert GenerationJob.objects.get(pk=flux.pk).queue == "gpu@one.dq"


def test_users_still_take_turns_when_one_users_forty_jobs_are_for_the_same_holder(
    alice, bob, sent, settings, django_capture_on_commit_callbacks
) -> None:
    settings.STUDIO_USER_DISPATCH = 2
    worker("gpu@one", "tiny-flux")
    worker("gpu@two", "tiny-sdxl")
    alices = [GenerationJobFactory(owner=alice, model_key="tiny-flux") for _ in range(40)]
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.dispatch(user_id=alice.pk)
    bobs = GenerationJobFactory(owner=bob, model_key="tiny-flux")
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.dispatch(user_id=bob.pk)
    # Two of alice's are on the broker, the other 38 wait in the database; bob's goes at once.
    assert [job_id for job_id, _ in sent] == [str(alices[0].pk), str(alices[1].pk), str(bobs.pk)]
    # Her second to the idle worker (no waiting job asks for its model), bob's behind her first.
    assert [queue for _, queue in sent] == ["gpu@one.dq", "gpu@two.dq", "gpu@one.dq"]
    GenerationJob.objects.filter(pk=alices[0].pk).update(status=JobStatus.PROCESSING, worker="gpu@one")
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.job_complete(job_id=alices[0].pk)
    assert sent[-1][0] == str(alices[2].pk)  # her next one goes as one of hers ends, not before


def test_jobs_waiting_on_a_gone_workers_queue_are_sent_again_at_once(
    sent, settings, django_capture_on_commit_callbacks
) -> None:
    settings.STUDIO_STALE_AFTER_SECONDS = 30
    settings.STUDIO_RESEND_AFTER_SECONDS = 3600
    worker("gpu@gone", "tiny-flux", seen=60)
    worker("gpu@live", "tiny-flux")
    lost = GenerationJobFactory(model_key="tiny-flux", queue="gpu@gone.dq", dispatched_at=timezone.now())
    fine = GenerationJobFactory(model_key="tiny-flux", queue="gpu@live.dq", dispatched_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.resend_unclaimed() == 1
    assert sent == [(str(lost.pk), "gpu@live.dq")]
    assert str(fine.pk) not in {job_id for job_id, _ in sent}
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.resend_unclaimed() == 0  # sent once


def test_a_job_requeued_from_a_stopped_worker_is_not_sent_back_to_its_queue(
    sent, settings, django_capture_on_commit_callbacks
) -> None:
    settings.STUDIO_STALE_AFTER_SECONDS = 30
    worker("gpu@stopped", "tiny-flux", seen=20)  # its own stamp is not stale yet: its job's heartbeat is
    worker("gpu@other", "tiny-sdxl")
    stale = timezone.now() - timedelta(seconds=40)
    job = GenerationJobFactory(
        model_key="tiny-flux", status=JobStatus.PROCESSING, worker="gpu@stopped", attempts=1, heartbeat_at=stale
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.jobs_reap_stale() == 1
    assert sent == [(str(job.pk), "gpu@other.dq")]  # idle, and the stopped one counts as gone
    routing.touch(node="gpu@stopped")  # it was only slow: its next stamp brings it back
    assert queue_for("tiny-flux") == "gpu@stopped.dq"


def test_a_worker_shutting_down_is_sent_no_job_and_its_waiting_jobs_go_elsewhere(
    sent, settings, django_capture_on_commit_callbacks
) -> None:
    settings.STUDIO_RESEND_AFTER_SECONDS = 3600
    worker("gpu@deploy", "tiny-flux")
    job = GenerationJobFactory(model_key="tiny-flux", queue="gpu@deploy.dq", dispatched_at=timezone.now())
    routing.forget(node="gpu@deploy")
    routing.touch(node="gpu@deploy")  # its pool process still stamps the row while its last job runs
    assert queue_for("tiny-flux") == "gpu"
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.resend_unclaimed() == 1
    assert sent == [(str(job.pk), None)]


def test_a_new_life_of_a_worker_takes_back_its_row() -> None:
    worker("gpu@deploy", "tiny-flux", leaving=True)
    routing.advertise(node="gpu@deploy", holds=[], free_bytes=GB, card="cpu", pid=2, start=True)
    assert list(routing.live_workers().values_list("node", flat=True)) == ["gpu@deploy"]


def test_a_spare_worker_loads_a_model_only_when_enough_of_its_jobs_wait_and_none_wait_for_its_own(settings) -> None:
    settings.STUDIO_ROUTING_BACKLOG = 3
    worker("gpu@one", "tiny-flux")
    worker("gpu@two", "tiny-sdxl")
    running_on("gpu@one", "tiny-flux")
    waiting_on("gpu@one.dq", 1, "tiny-flux")
    assert queue_for("tiny-flux") == "gpu@one.dq"  # one waits: not worth a load
    GenerationJobFactory.create_batch(2, model_key="tiny-flux")  # in the database: their owners' turns come
    later = GenerationJobFactory(model_key="tiny-sdxl")
    assert queue_for("tiny-flux") == "gpu@one.dq"  # two keeps its model: a job waits for it
    later.delete()
    assert queue_for("tiny-flux") == "gpu@two.dq"  # three wait, and nobody for two's model


def test_while_jobs_wait_on_the_shared_queue_the_next_go_there_too_so_none_overtakes_them() -> None:
    worker("gpu@one", "tiny-flux")
    older = GenerationJobFactory(model_key="tiny-sdxl", queue="gpu", dispatched_at=timezone.now())
    assert queue_for("tiny-flux") == "gpu"  # one reads its own queue first: this would go ahead
    older.delete()
    assert queue_for("tiny-flux") == "gpu@one.dq"
