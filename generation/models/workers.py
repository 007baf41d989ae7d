"""What each GPU worker says of itself, for routing (generation/routing/): its own queue, the models
it holds and the memory they leave free. One row per Celery node, written by the worker."""

from django.db import models
from django.utils import timezone


class WorkerState(models.Model):
    """A GPU worker's advertisement. Its pool process writes it at start, after each model load
    or unload, and stamps `seen_at` every STUDIO_HEARTBEAT_SECONDS; a row older than
    STUDIO_STALE_AFTER_SECONDS is a worker gone (killed, frozen, stopped); one `leaving` is shutting
    down (a deploy's SIGTERM): it finishes its job and is sent no other."""

    node = models.CharField(max_length=200, unique=True)  # the Celery node name, e.g. gpu@host
    queue = models.CharField(max_length=220)  # its direct queue: only this worker takes from it
    holds = models.JSONField(default=list)  # the model keys it holds, least recently used first
    free_bytes = models.BigIntegerField(default=0)  # what its memory budget (and card) leave free
    card = models.CharField(max_length=100, blank=True)  # the card it renders on; "cpu" without one
    pid = models.PositiveIntegerField(null=True, blank=True)  # the pool process that wrote it
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    leaving = models.BooleanField(default=False)  # shutting down: finishes its job, takes no new one

    class Meta:
        ordering = ["node"]

    def __str__(self) -> str:
        return f"{self.node} ({', '.join(self.holds) or 'no model'})"
