"""Logs a machine can read: JSON lines carrying the id of the job being worked on.

`LOG_FORMAT=json` switches the console to one JSON object a line (for a log collector); the
job id comes from a context variable the worker sets while it runs a job, so every line of a
job (the studio's, diffusers', Celery's) can be found by that id.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar

current_job: ContextVar[str] = ContextVar("current_job", default="")


class JobFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = current_job.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if job_id := getattr(record, "job_id", ""):
            entry["job_id"] = job_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
