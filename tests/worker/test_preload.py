"""A job that arrives while the worker preloads the default model waits for it, and says so."""

import logging
import threading

import pytest
from django.urls import reverse

from generation.jobs import lifecycle
from generation.models import JobStatus
from generation.worker import engines as worker_engines
from generation.worker import run as worker_run
from tests.factories import GenerationJobFactory

pytestmark = pytest.mark.django_db


def test_a_taken_back_job_says_it_is_loading_the_model_not_step_0_of_the_last_attempt(alice, alice_client) -> None:
    job = GenerationJobFactory(owner=alice, status=JobStatus.QUEUED, progress_step=12, progress_steps=28, attempts=1)
    lifecycle.job_claim(job_id=job.pk, worker="gpu@restarted")
    job.refresh_from_db()
    assert (job.progress_step, job.progress_steps) == (0, 0)
    panel = alice_client.get(reverse("job", args=[job.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "Loading the model…" in panel and "Step 0 of 28" not in panel


def test_a_job_arriving_during_the_preload_waits_for_it_and_its_timings_and_log_say_so(caplog, monkeypatch) -> None:
    worker_engines.load_engine("tiny-flux")  # loaded already: the wait below is the lock's alone
    job = GenerationJobFactory()
    with worker_engines.engines_lock:  # the preload thread, loading the default model
        monkeypatch.setattr(worker_engines, "_loading", "tiny-flux")
        threading.Timer(0.4, worker_engines.engines_lock.release).start()
        with caplog.at_level(logging.INFO, logger="generation.worker.engines"):
            worker_run.run_job(str(job.pk), worker="gpu@test")
        worker_engines.engines_lock.acquire()  # given back to the with block, which releases it
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE and job.timings["wait"] >= 0.35
    assert f"Job {job.pk} waits for tiny-flux to finish loading" in caplog.text
