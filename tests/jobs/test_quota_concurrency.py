"""Per-user limits hold when one user's submissions arrive at the same moment, from every door."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from generation.jobs import lifecycle
from generation.models import GenerationJob
from generation.tokens import token_create
from tests.factories import AssetPresetFactory, UserFactory
from tests.test_workflow import finished_job

# Real threads need real transactions; serialized_rollback gives later tests the seeded models back.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SUBMITTERS = 48


@pytest.fixture(autouse=True)
def no_broker(monkeypatch) -> None:
    monkeypatch.setattr(lifecycle, "job_enqueue", lambda job_id: None)


def submissions_this_minute(user) -> int:
    recent = GenerationJob.objects.filter(owner=user, created_at__gte=timezone.now() - timedelta(seconds=60))
    return (
        recent.filter(group__isnull=True).count()
        + recent.exclude(group__isnull=True).values("group").distinct().count()
    )


def at_once(requests: list) -> list:
    """Run every request on a thread of its own, all released together; their responses in order."""
    start = threading.Barrier(len(requests))
    responses: list = [None] * len(requests)

    def run(index: int, request) -> None:
        try:
            start.wait()
            responses[index] = request()
        finally:
            connection.close()  # each thread has its own connection; the test database must be droppable

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return responses


def test_simultaneous_submissions_from_every_door_accept_exactly_the_per_minute_limit(settings) -> None:
    settings.STUDIO_SUBMISSIONS_PER_MINUTE = 30
    alice = UserFactory(username="alice")
    preset, other = AssetPresetFactory(slug="test-icon"), AssetPresetFactory(slug="test-spot")
    earlier = finished_job(alice)
    GenerationJob.objects.filter(pk=earlier.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    secret = token_create(user=alice, name="tests")[1]

    def browser() -> Client:
        client = Client(HTTP_HX_REQUEST="true")
        client.force_login(alice)
        return client

    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    columns = {"presets": [preset.slug, other.slug], "models": ["tiny-flux"]}
    form = {"preset": preset.slug, "prompt": "a key", "quality": "draft", "variations": "1"}
    body = {"asset_type": preset.slug, "description": "a key", "quality": "draft", "variations": 1}
    image = earlier.images.first()
    doors = {
        "studio": lambda c: c.post(reverse("studio"), form),
        "api": lambda c: api.post("/api/v1/jobs", body, content_type="application/json"),
        "batch": lambda c: c.post(reverse("batch"), form | {"descriptions": "a\nb"}),
        "compare": lambda c: c.post(reverse("compare"), form | columns),
        "more": lambda c: c.post(reverse("job-more", args=[earlier.pk])),
        "vary": lambda c: c.post(reverse("image-vary", args=[image.pk]), {"strength": "subtle"}),
        "api-regenerate": lambda c: api.post(f"/api/v1/jobs/{earlier.pk}/regenerate", {}, "application/json"),
    }
    names = [*["studio"] * 14, *["api"] * 14, *[name for name in doors if name not in ("studio", "api")] * 4]
    assert len(names) == SUBMITTERS
    clients = [browser() for _ in names]
    responses = at_once([lambda door=doors[n], c=c: door(c) for n, c in zip(names, clients, strict=True)])

    statuses = [getattr(r, "status_code", None) for r in responses]
    assert set(statuses) <= {200, 202, 302, 429}, statuses  # accepted (panel, API, group page) or refused
    refused = [r for r in responses if r.has_header("Retry-After")]
    assert len(responses) - len(refused) == 30 == submissions_this_minute(alice)
    assert all(r.status_code == 429 for r in refused)
    assert all(1 <= int(r["Retry-After"]) <= 61 for r in refused)
