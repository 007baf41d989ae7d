"""A worker's lease on the job it runs: the token `lifecycle.job_claim` wrote on the job's row.

Every write a worker makes for a job (progress, previews, images, finishing, completion, failure)
goes through its lease: the write happens only while the job is still running under that token.
A worker that froze past the stale limit finds, when it wakes, that the reaper requeued the job
and another worker claimed it (a new token): its writes find no row, it stops quietly, and it
removes the files it wrote for rows it could not save.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from ..models import GenerationJob, ImagePreview, JobStatus


class LeaseLost(Exception):
    """The job no longer runs under this worker's lease: cancelled, or reaped and handed on."""


@dataclass(frozen=True)
class Lease:
    job_id: uuid.UUID
    token: uuid.UUID

    @classmethod
    def of(cls, job: GenerationJob) -> Lease:
        assert job.lease is not None, "a job is claimed (lifecycle.job_claim) before it runs"
        return cls(job.pk, job.lease)

    def held(self) -> QuerySet[GenerationJob]:
        """The job's row while this lease holds it; empty once it does not."""
        return GenerationJob.objects.filter(pk=self.job_id, status=JobStatus.PROCESSING, lease=self.token)

    def update(self, **fields: Any) -> None:
        """Write these fields on the job's row, or raise LeaseLost."""
        if not self.held().update(**fields):
            raise LeaseLost(f"Job {self.job_id} is no longer running under this worker's lease.")

    def is_held(self) -> bool:
        return self.held().exists()

    @contextmanager
    def holding(self) -> Iterator[None]:
        """A transaction in which the lease holds: the job's row is locked, so the reaper cannot
        hand the job on, nor a cancel land, before the writes inside it commit."""
        with transaction.atomic():
            if not list(self.held().select_for_update().values_list("pk", flat=True)):
                raise LeaseLost(f"Job {self.job_id} is no longer running under this worker's lease.")
            yield

    def clear_previews(self) -> None:
        """The job's live previews, removed once this worker stops running it (whether the job
        completed, failed or was cancelled), unless another worker holds the job now."""
        ImagePreview.objects.filter(job_id=self.job_id, job__lease=self.token).delete()
