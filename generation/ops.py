"""What staff see of the machinery: broker queue depth and live workers (read-only probes), and
the audit trail of the catalogue's changes.

Both probes ask the broker, so both are bounded by short timeouts and report "unknown" rather than
hang or fail the page when the broker is down. The audit trail is django-simple-history's: each
audited model's `history = HistoricalRecords()` records every save and delete, with the user of
the request (HistoryRequestMiddleware); this module lists those records across models and words
their field-level diffs the same way on the trail page and the admin's History pages.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.apps import apps
from django.contrib.admin.views.decorators import staff_member_required
from django.core.cache import cache
from django.core.exceptions import ObjectDoesNotExist
from django.core.paginator import Page, Paginator
from django.db import models
from django.db.models import Value
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.views.decorators.http import require_GET
from simple_history.models import ModelChange
from simple_history.template_utils import HistoricalRecordContextHelper
from simple_history.utils import get_history_model_for_model

from brandstudio.celery import app

log = logging.getLogger(__name__)

QUEUES = ("gpu", "training", "maintenance")


@dataclass
class WorkerInfo:
    name: str
    active: list[str] = field(default_factory=list)  # job ids it is running


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each broker queue (None: the broker could not be asked)."""
    depths: dict[str, int | None] = {}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            for name in QUEUES:
                depths[name] = _depth(conn, name)
    except Exception as exc:
        log.warning("Queue depth unavailable: %s", exc)
        return dict.fromkeys(QUEUES)
    return depths


def _depth(conn: object, name: str) -> int | None:
    try:
        with conn.channel() as channel:  # type: ignore[attr-defined]
            return int(channel.queue_declare(queue=name, passive=True).message_count)
    except Exception:  # a queue nobody declared yet holds nothing
        return 0


WORKER_NAMES_SECONDS = 5  # how long /health/?workers=1 answers from the last ask


def worker_names() -> list[str] | None:
    """The names of the workers that answer (None: no broker), asked at most once every few
    seconds per web process: each ask holds the request's thread for up to a second."""
    cached = cache.get("health-worker-names", default=False)
    if cached is not False:
        return cached
    answered = workers(timeout=1.0)
    names = None if answered is None else [w.name for w in answered]
    cache.set("health-worker-names", names, WORKER_NAMES_SECONDS)
    return names


def workers(timeout: float = 1.0) -> list[WorkerInfo] | None:
    """The workers that answer within `timeout`, with the jobs they are running (None: no broker)."""
    try:
        active = app.control.inspect(timeout=timeout).active() or {}
    except Exception as exc:
        log.warning("Worker status unavailable: %s", exc)
        return None
    return [
        WorkerInfo(name, [str((task.get("args") or ["?"])[0]) for task in tasks])
        for name, tasks in sorted(active.items())
    ]


# --- The audit trail


AUDIT_PAGE_SIZE = 50


def audited_models() -> list[type[models.Model]]:
    """The models with a `history = HistoricalRecords()` line: that line (and its migration) is
    all a model needs to join the trail, this page's filter and its admin's History page."""
    return [model for model in apps.get_models() if is_audited(model)]


def is_audited(model: type[models.Model]) -> bool:
    return hasattr(model._meta, "simple_history_manager_attribute")


def audit_entries(model_name: str = "") -> Any:
    """Every audited model's records (or one model's) as one list, newest first: which model,
    which record. One UNION query, so that the paginator counts and slices in the database."""
    parts = [
        get_history_model_for_model(model)
        .objects.annotate(model=Value(model._meta.model_name, output_field=models.CharField()))
        .values("history_date", "history_id", "model")
        .order_by()
        for model in audited_models()
        if model_name in ("", model._meta.model_name)
    ]
    entries = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    return entries.order_by("-history_date", "-history_id")


@dataclass
class AuditRow:
    record: Any  # a historical record: history_date, history_user, history_type, the row's fields
    model: type[models.Model]
    changes: list[dict[str, str]]  # field, old, new: what a change changed

    @property
    def kind(self) -> str:
        return capfirst(str(self.model._meta.verbose_name))

    @property
    def label(self) -> str:
        name = _name(self.record.instance, f"{self.model._meta.verbose_name} {self.record.id}")
        return f"{_name(self.parent, '?')} › {name}" if self.parent is not None else name

    @property
    def url(self) -> str:
        """The object's History page in the admin; for a row edited inline (a preset's LoRA), its
        parent's change page. "" when neither is in the admin or the parent is gone."""
        if self.parent is None:
            opts = self.model._meta
            return _admin_url(f"{opts.app_label}_{opts.model_name}_history", self.record.id)
        parent = self.parent._meta
        return _admin_url(f"{parent.app_label}_{parent.model_name}_change", self.parent.pk)

    @cached_property
    def parent(self) -> models.Model | None:
        """The object an inline's row belongs to (deleted with it): which asset type a LoRA link or
        a brand reference is on. None for a model with an admin page of its own."""
        opts = self.model._meta
        if _admin_url(f"{opts.app_label}_{opts.model_name}_changelist"):
            return None
        for fk in opts.concrete_fields:
            if isinstance(fk, models.ForeignKey) and fk.remote_field.on_delete is models.CASCADE:
                try:
                    return getattr(self.record, fk.name)
                except ObjectDoesNotExist:  # deleted since: the row is named alone
                    return None
        return None


def _name(instance: models.Model | None, fallback: str) -> str:
    try:
        return str(instance) if instance is not None else fallback
    except ObjectDoesNotExist:  # its name comes from a related row deleted since
        return fallback


def _admin_url(name: str, *args: Any) -> str:
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return ""


def audit_rows(page: Page) -> list[AuditRow]:
    """The page's records, each with what it changed since the record before it."""
    by_name = {model._meta.model_name: model for model in audited_models()}
    wanted: dict[str, list[int]] = {}
    for entry in page:
        wanted.setdefault(entry["model"], []).append(entry["history_id"])
    records = {
        (name, pk): record
        for name, ids in wanted.items()
        for pk, record in get_history_model_for_model(by_name[name])
        .objects.select_related("history_user")
        .in_bulk(ids)
        .items()
    }
    rows = []
    for entry in page:
        model, record = by_name[entry["model"]], records[entry["model"], entry["history_id"]]
        rows.append(AuditRow(record, model, changes_of(model, record)))
    return rows


def changes_of(model: type[models.Model], record: Any) -> list[dict[str, str]]:
    """A change's field-level diff against the object's record before it (simple-history's
    diff_against: the fields an admin form edits); nothing for a creation or a deletion."""
    if record.history_type != "~" or (before := record.prev_record) is None:
        return []
    delta = record.diff_against(before, foreign_keys_are_objs=True)
    return ChangeWording(model, record).context_for_delta_changes(delta)


class ChangeWording(HistoricalRecordContextHelper):
    """simple-history's wording of a change, with JSON fields written as JSON (as the admin
    edits them) rather than as Python reprs, an object showing only the keys that changed, and
    an emptied field as "—"."""

    def prepare_delta_change_value(self, change: ModelChange, value: Any) -> Any:
        if isinstance(self.model._meta.get_field(change.field), models.JSONField):
            return json_text(value, changed_keys(change.old, change.new))
        if value is None or value == "":
            return "—"
        return super().prepare_delta_change_value(change, value)


def changed_keys(old: Any, new: Any) -> list[str] | None:
    """The keys two JSON objects differ in; None unless both are objects."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return None
    return sorted(key for key in old.keys() | new.keys() if old.get(key, ...) != new.get(key, ...))


def json_text(value: Any, keys: list[str] | None) -> str:
    """`value` as JSON; an object as only `keys` of it, with "…" standing for the keys left out."""
    if keys is None or not isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    shown = json.dumps({key: value[key] for key in keys if key in value}, ensure_ascii=False)[1:-1]
    left_out = len(value) > len([key for key in keys if key in value])
    return "{" + ", ".join(part for part in (shown, "…" if left_out else "") if part) + "}"


@require_GET
@staff_member_required
def audit_trail(request: HttpRequest) -> HttpResponse:
    """Staff: the latest changes to every audited model, newest first, filtered by model."""
    choices = {model._meta.model_name: capfirst(str(model._meta.verbose_name_plural)) for model in audited_models()}
    chosen = request.GET.get("model", "")
    chosen = chosen if chosen in choices else ""
    page = Paginator(audit_entries(chosen), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "rows": audit_rows(page),
        "models": choices,
        "model": chosen,
        "query": urlencode({"model": chosen}) if chosen else "",
    }
    return render(request, "generation/audit.html", context)
