"""The order a worker reads its queues in: its own queue just before the shared job queue.

Kombu's Redis transport asks every queue at once (one BRPOP over their lists) and takes from the
first that holds a message, in the order its `queue_order_strategy` gives; the default round robin
moves the queue it just took from to the end, so each queue gets its turn. Here the worker's own
queue (routing sends there the jobs of the models it holds) and the shared `gpu` queue take their
turn together, its own first: a depth preview or a job sent while no worker was live never goes
ahead of the worker's own jobs, and `training` and `maintenance` (the reaper) still get their turns.
https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.redis.html
"""

from __future__ import annotations

from collections.abc import Iterable

from kombu.utils.scheduling import round_robin_cycle

OWN = ".dq"  # how a worker's own queue ends (routing.workers.direct_queue)
SHARED = "gpu"  # the jobs' queue in CELERY_TASK_ROUTES (a test checks they agree)


class OwnQueueFirst(round_robin_cycle):
    def update(self, it: Iterable[str]) -> None:
        super().update(_own_before_shared(list(it)))

    def rotate(self, last_used: str) -> None:
        super().rotate(SHARED if last_used.endswith(OWN) else last_used)  # the pair's turn is over
        super().update(_own_before_shared(list(self.items or [])))


def _own_before_shared(queues: list[str]) -> list[str]:
    own = [queue for queue in queues if queue.endswith(OWN)]
    rest = [queue for queue in queues if not queue.endswith(OWN)]
    at = rest.index(SHARED) if SHARED in rest else 0
    return rest[:at] + own + rest[at:]
