"""Where GPU workers scale to zero (deploy/azure/), a job that waits while none runs says a worker
is starting and how long that takes, not only that it waits (STUDIO_COLD_START_SECONDS)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from generation.jobs.selectors import gpu_cold_start_seconds
from generation.models import WorkerState
from tests.factories import GenerationJobFactory

STARTING = "Starting a GPU worker"


@pytest.fixture
def queued_job(alice):
    return GenerationJobFactory(owner=alice, status="queued")


def live_worker(**fields) -> WorkerState:
    return WorkerState.objects.create(node="gpu@replica-1", queue="gpu@replica-1.dq", **fields)


def test_a_job_waiting_while_no_gpu_worker_runs_says_one_is_starting(settings, alice_client, queued_job):
    settings.STUDIO_COLD_START_SECONDS = 90
    page = alice_client.get(queued_job.get_absolute_url()).content.decode()
    assert STARTING in page and "about 90 s" in page
    assert "Waiting for a worker" not in page


def test_a_job_waiting_for_a_running_worker_waits_as_before(settings, alice_client, queued_job):
    settings.STUDIO_COLD_START_SECONDS = 90
    live_worker()
    page = alice_client.get(queued_job.get_absolute_url()).content.decode()
    assert "Waiting for a worker" in page and STARTING not in page


def test_a_worker_gone_quiet_counts_as_none(settings, db):
    settings.STUDIO_COLD_START_SECONDS = 60
    live_worker(seen_at=timezone.now() - timedelta(seconds=settings.STUDIO_STALE_AFTER_SECONDS + 5))
    assert gpu_cold_start_seconds() == 60


def test_where_workers_never_scale_to_zero_nothing_changes(settings, alice_client, queued_job):
    settings.STUDIO_COLD_START_SECONDS = 0
    page = alice_client.get(queued_job.get_absolute_url()).content.decode()
    assert "Waiting for a worker" in page and STARTING not in page


def test_the_live_channel_draws_a_new_job_with_the_cold_start_too(settings, alice_client, queued_job):
    """The studio page's panel of a just-submitted job is the same partial: it says so at once."""
    settings.STUDIO_COLD_START_SECONDS = 75
    page = alice_client.get("/").content.decode()
    assert STARTING in page and "about 75 s" in page
