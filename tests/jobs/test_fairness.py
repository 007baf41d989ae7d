"""Fair use: users take turns on the GPU queue, and per-user limits answer 429."""

import pytest
from django.urls import reverse

from generation.jobs import lifecycle, limits
from generation.jobs import submit as jobs_submit
from generation.models import GenerationJob, JobStatus
from tests.factories import AssetPresetFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch) -> list:
    """The broker messages sent, in order (job ids)."""
    messages: list = []
    monkeypatch.setattr(lifecycle, "job_enqueue", lambda job_id: messages.append(job_id))
    return messages


def submit(user, count: int, prompt: str = "a key") -> list[GenerationJob]:
    preset = AssetPresetFactory(slug="fair")
    return [
        jobs_submit.job_create(owner=user, preset=preset, prompt=f"{prompt} {n}", variations=1) for n in range(count)
    ]


def test_a_big_batch_waits_in_the_database_while_others_go_ahead(
    alice, bob, sent, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        alices = submit(alice, 10)
    assert sent == [alices[0].pk, alices[1].pk]  # two on the queue, eight waiting in order
    with django_capture_on_commit_callbacks(execute=True):
        bobs = submit(bob, 1)
    assert sent[-1] == bobs[0].pk  # bob does not wait behind alice's eight
    GenerationJob.objects.filter(pk=alices[0].pk).update(status=JobStatus.PROCESSING)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.job_complete(job_id=alices[0].pk)
    assert sent[-1] == alices[2].pk  # her next one goes as one of hers ends


def test_cancelling_or_failing_frees_the_slot_for_the_next_job(alice, sent, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        jobs = submit(alice, 4)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.job_cancel(job=jobs[0])
        lifecycle.job_fail(job_id=jobs[1].pk, reason="broken")
    assert sent == [job.pk for job in jobs]


def test_the_reaper_dispatches_what_was_missed(alice, sent, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        jobs = submit(alice, 4)
    GenerationJob.objects.filter(pk__in=[jobs[0].pk, jobs[1].pk]).update(status=JobStatus.PROCESSING)
    with django_capture_on_commit_callbacks(execute=False):  # the dispatch after the job ends is lost
        lifecycle.job_complete(job_id=jobs[0].pk)
    assert sent == [jobs[0].pk, jobs[1].pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.dispatch_waiting() == 1
    assert sent[-1] == jobs[2].pk


def test_jobs_in_flight_past_the_limit_are_a_429(alice_client, alice, preset, settings) -> None:
    settings.STUDIO_MAX_JOBS_IN_FLIGHT = 2
    data = {"preset": preset.slug, "prompt": "a key", "quality": "draft", "variations": "1"}
    for _ in range(2):
        assert alice_client.post(reverse("studio"), data).status_code == 302
    response = alice_client.post(reverse("studio"), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 429 and "limit is 2" in response.content.decode()
    assert GenerationJob.objects.count() == 2
    other = UserFactory(username="carol")
    limits.quota_check(other)  # the limit is per user


def test_a_batch_counts_once_per_minute_but_its_jobs_count_in_flight(alice_client, preset, settings) -> None:
    settings.STUDIO_SUBMISSIONS_PER_MINUTE = 2
    settings.STUDIO_MAX_JOBS_IN_FLIGHT = 5
    payload = {"preset": preset.slug, "quality": "draft", "variations": "1"}
    assert alice_client.post(reverse("batch"), payload | {"descriptions": "a\nb\nc"}).status_code == 302
    response = alice_client.post(reverse("batch"), payload | {"descriptions": "d\ne\nf"})
    assert response.status_code == 302 and GenerationJob.objects.count() == 3  # 6 would pass the 5 in flight
    assert alice_client.post(reverse("batch"), payload | {"descriptions": "g"}).status_code == 302
    response = alice_client.post(reverse("batch"), payload | {"descriptions": "h"})
    assert GenerationJob.objects.count() == 4 and response.status_code == 302  # 2 submissions this minute
