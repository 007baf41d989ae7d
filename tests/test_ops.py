"""What staff see and do: everyone's jobs, cancel any, queue depth and worker status."""

import pytest
import redis
from django.conf import settings
from django.urls import reverse

from generation import ops
from generation.models import GenerationJob, JobStatus
from generation.tasks import run_generation_job
from tests.factories import GenerationJobFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    staff = UserFactory(username="stella", is_staff=True)
    client.force_login(staff)
    return client


@pytest.fixture
def empty_broker():
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    yield
    broker.flushdb()


def test_staff_see_every_users_jobs_and_can_cancel_any(staff_client, alice) -> None:
    job = GenerationJobFactory(owner=alice, prompt="alice's lighthouse")
    page = staff_client.get(reverse("ops")).content.decode()
    assert "alice&#x27;s lighthouse" in page and reverse("ops-cancel", args=[job.id]) in page
    staff_client.post(reverse("ops-cancel", args=[job.id]))
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_designers_cannot_open_operations_or_cancel_others_jobs(alice_client, bob) -> None:
    job = GenerationJobFactory(owner=bob)
    assert alice_client.get(reverse("ops")).status_code == 302  # to the admin login
    alice_client.post(reverse("ops-cancel", args=[job.id]))
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_the_admin_cancels_selected_jobs(staff_client, alice) -> None:
    staff = UserFactory(username="root", is_staff=True, is_superuser=True)
    staff_client.force_login(staff)
    jobs = [GenerationJobFactory(owner=alice) for _ in range(2)]
    url = reverse("admin:generation_generationjob_changelist")
    staff_client.post(url, {"action": "cancel_jobs", "_selected_action": [str(j.pk) for j in jobs]})
    assert set(GenerationJob.objects.values_list("status", flat=True)) == {JobStatus.CANCELLED}


def test_queue_depth_counts_the_messages_waiting_in_redis(empty_broker) -> None:
    assert ops.queue_depths()["gpu"] == 0
    for _ in range(3):
        run_generation_job.delay("00000000-0000-0000-0000-000000000000")
    assert ops.queue_depths()["gpu"] == 3


def test_with_no_worker_running_the_page_says_jobs_will_wait(staff_client, empty_broker) -> None:
    page = staff_client.get(reverse("ops")).content.decode()
    assert "No worker answered" in page


def test_an_unreachable_broker_shows_unknown_rather_than_failing(staff_client, monkeypatch) -> None:
    from kombu import Connection

    monkeypatch.setattr(ops.app, "connection_for_read", lambda: Connection("redis://127.0.0.1:1/0"))
    assert ops.queue_depths() == {"gpu": None, "training": None, "maintenance": None}
    assert "unknown (broker unreachable)" in staff_client.get(reverse("ops")).content.decode()
