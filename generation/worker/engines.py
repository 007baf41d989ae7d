"""The engines a worker process keeps loaded: one per model, within STUDIO_MEMORY_BUDGET_GB and, on a
card, as many as their memory plans say fit it together; the least recently used unloaded first (the
default model last), and one load at a time. What it holds is advertised for routing."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from ..engine import Engine, EngineError, engine_class
from ..engine.types import GenerationRequest
from ..memory.cards import Card
from ..memory.plan import Job, Plan, PlanError, fit_together, plan_for
from ..model_files import folder_size, gguf_choices, installed_components, local_weights
from ..models import ImageModel
from ..routing import workers as routing_workers
from ..speed.registry import offered_sizes, speed_for
from .progress import Stopwatch

log = logging.getLogger(__name__)

# model key -> loaded engine; lives as long as the worker process, so weights load once.
_engines: OrderedDict[str, Engine] = OrderedDict()

# One load at a time, even of different models: two loads at once could pass the memory budget
# (which counts loaded engines only), and the libraries' lazy imports are not thread-safe. So a
# job that arrives while the default model preloads waits for it; it says so (log, timings).
engines_lock = threading.Lock()

_loading: str | None = None  # the model being loaded under engines_lock, for that message

# On a card: each loaded model's memory plan (None for an entry that fixes its memory_mode: it holds
# the card alone). Empty on the CPU, where STUDIO_MEMORY_BUDGET_GB alone decides.
_card_plans: dict[str, Plan | None] = {}
_card: Card | None = None  # this worker's card, for what it advertises: None on the CPU
_card_name = ""  # ... and its name, "cpu" without one; "" until the first load asks (torch imports there)
_node = ""  # the Celery node this process advertises for (worker/signals); "" where it does not
_advertised = False  # whether its last advertisement was written


def preload_default_model() -> None:
    try:
        load_engine(settings.STUDIO_DEFAULT_MODEL)
    except EngineError as exc:
        log.warning("Default model not preloaded: %s", exc)
    except Exception:
        log.exception("Default model not preloaded")


def load_engine(model_key: str, *, clock: Stopwatch | None = None, waiting: str = "A job") -> Engine:
    """The loaded engine for a model, loading it (and evicting others) if needed.

    Loaded engines stay in this process between jobs. When a new model would not fit the
    memory budget, the least recently used one goes first; the default model goes last.
    `clock` gets the time spent waiting for another load ("wait") and loading ("load").
    """
    clock = clock or Stopwatch()
    if not engines_lock.acquire(blocking=False):  # the preload thread (or a training import) has it
        log.info("%s waits for %s to finish loading", waiting, _loading or "another model")
        with clock.measure("wait"):
            engines_lock.acquire()
    try:
        with clock.measure("load"):
            return _load_engine(model_key)
    finally:
        engines_lock.release()


def _load_engine(model_key: str) -> Engine:
    global _loading
    if model_key in _engines:
        _engines.move_to_end(model_key)
        return _engines[model_key]
    model = ImageModel.objects.filter(key=model_key).first()
    if model is None:
        raise EngineError(f"Model {model_key!r} is not configured on this studio.")
    path = local_weights(model)
    card = _worker_card()
    planned = card_plan(model, path, card)
    _make_room(folder_size(path), card=card, plan=planned)
    log.info("Loading %s (%s) from %s", model.name, model.family, path)
    _loading = model_key
    try:
        plan = _stored_plan(model, card, planned)
        options = dict(model.options or {})
        if model.gguf_path is not None:  # the engine reads the file where this machine keeps it
            options["gguf"] = str(model.gguf_path)
        family = engine_class(model.family)
        speed = speed_for(model, on_gpu=card is not None)
        _engines[model_key] = family(path, device=settings.STUDIO_DEVICE, options=options, plan=plan, speed=speed)
    finally:
        _loading = None
    if card is not None:
        _card_plans[model_key] = planned
    advertise()
    return _engines[model_key]


def memory_plan(model: ImageModel, path: Path) -> dict[str, Any] | None:
    """How this worker's card holds the model (generation/memory/plan.py), with the entry's
    `memory` overrides. On the CPU, or where the entry fixes a `memory_mode`, only those
    overrides apply (there is no card to fit): None when there are none."""
    card = worker_card()
    return _stored_plan(model, card, card_plan(model, path, card))


def card_plan(model: ImageModel, path: Path, card: Card | None) -> Plan | None:
    """The plan that fits the model on `card`; None on the CPU or where the entry fixes a `memory_mode`."""
    if card is None or model.options.get("memory_mode", "auto") != "auto":
        return None
    if (components := installed_components(model)) is None:
        raise EngineError(f"{model.name}'s weights at {path} cannot be weighed for a memory plan.")
    overrides = (model.options or {}).get("memory") or {}
    try:
        side = _largest_side(model)
        plan = plan_for(components, card, Job(side, side), overrides=overrides, given=gguf_choices(model))
    except PlanError as exc:
        raise EngineError(f"No memory plan for {model.name} on this worker's {card.name}: {exc}") from None
    if not plan.fits:
        log.warning("%s does not fit the %s even streamed: %s", model.name, card.name, plan.summary())
    return plan


def _stored_plan(model: ImageModel, card: Card | None, plan: Plan | None) -> dict[str, Any] | None:
    """What the engine loads by and the job records: the card's plan, or the entry's overrides alone."""
    if plan is not None:
        return {**plan.as_json(), "summary": plan.summary()}
    overrides = (model.options or {}).get("memory") or {}
    return {"card": "cpu" if card is None else card.key, "components": overrides} if overrides else None


def _worker_card() -> Card | None:
    """worker_card(), kept for the advertisement (asked under engines_lock: torch imports there)."""
    global _card, _card_name
    _card = worker_card()
    _card_name = _card.name if _card else "cpu"
    return _card


def worker_card() -> Card | None:
    """The card this worker renders on, as the planner knows cards; None on the CPU."""
    # torch, imported here and not with this module: the training task imports this module's
    # lock while the preload thread may be importing torch and diffusers (not thread-safe).
    import torch

    from ..engine.devices import resolve_device

    device = resolve_device(settings.STUDIO_DEVICE)
    if device.type != "cuda":
        return None
    props = torch.cuda.get_device_properties(device)
    return Card("cuda", props.name, props.total_memory / 2**30, (props.major, props.minor))


def _largest_side(model: ImageModel) -> int:
    """The largest side its jobs ask for: the largest size the asset types offer it (sizes over
    its own largest are refused at submit)."""
    return max((max(size) for size in offered_sizes(model)), default=min(model.max_side, 1024))


def _make_room(needed: int, *, keep: str = "", card: Card | None = None, plan: Plan | None = None) -> None:
    """Unload the least recently used models (the default model last, `keep` never) until
    `needed` more bytes fit the budget and, on a `card`, the new model's `plan` fits beside
    the models kept (memory/plan.fit_together)."""
    while _engines and not (_within_budget(needed) and (card is None or _fit_on_card(plan))):
        others = [key for key in _engines if key != keep]
        victims = [key for key in others if key != settings.STUDIO_DEFAULT_MODEL] or others
        if not victims:
            log.warning("%s with its add-ons is over STUDIO_MEMORY_BUDGET_GB on its own", keep)
            return
        within = "STUDIO_MEMORY_BUDGET_GB" + (f" and the {card.name}" if card else "")
        log.info("Unloading %s to stay within %s", victims[0], within)
        _engines.pop(victims[0]).unload()
        _card_plans.pop(victims[0], None)


def _within_budget(needed: int) -> bool:
    used = sum(e.memory_bytes for e in _engines.values()) + _estimator_bytes()
    return used + needed <= settings.STUDIO_MEMORY_BUDGET_GB * 2**30


def _fit_on_card(plan: Plan | None) -> bool:
    """Whether the loaded models and a new one (`plan`) fit the card together by their plans; a
    model without a plan (its entry fixes memory_mode) fits only alone."""
    plans = [*(_card_plans.get(key) for key in _engines), plan]
    known = [p for p in plans if p is not None]
    return len(plans) == 1 if len(known) < len(plans) else fit_together(known)


def _free_bytes() -> int:
    """What the loaded models leave of the budget and, on a card, of the card."""
    used = sum(e.memory_bytes for e in _engines.values()) + _estimator_bytes()
    free = int(settings.STUDIO_MEMORY_BUDGET_GB * 2**30) - used
    if _card is not None:
        resident = sum(p.resident_bytes for p in _card_plans.values() if p is not None)
        free = min(free, _card.usable_bytes - resident)
    return max(0, free)


def advertise_for(node: str) -> None:
    """From now on this process advertises what it holds for `node` (generation/routing/): now,
    and after each load or unload."""
    global _node
    _node = node
    with engines_lock:
        advertise(start=True)


def advertise(*, start: bool = False) -> None:
    """Tell routing which models this worker holds and what they leave free (under engines_lock).
    Never costs a job: a database that does not answer is said in the log, and the next stamp
    (worker/signals) writes it all again."""
    global _advertised
    if not _node:
        return
    try:
        routing_workers.advertise(
            node=_node, holds=list(_engines), free_bytes=_free_bytes(), card=_card_name, pid=os.getpid(), start=start
        )
        _advertised = True
    except DatabaseError:
        _advertised = False
        log.warning("Could not advertise the models this worker holds", exc_info=True)


def advertised() -> bool:
    """Whether the last advertisement was written (else the next stamp writes it again)."""
    return _advertised


def _estimator_bytes() -> int:
    """What the depth estimators this worker has read take (none before the first depth job:
    the module, and torch, are imported by that job)."""
    depth = sys.modules.get("generation.engine.depth")
    return depth.loaded_bytes() if depth is not None else 0


def make_room_for_estimator(folder: Path) -> None:
    """A depth preview reads the estimator outside a job: the models make room for it first."""
    from ..engine.depth import is_read  # torch: a depth preview imports it in the worker only

    _make_room_for([] if is_read(folder) else [folder])


def make_room_for_addons(engine: Engine, request: GenerationRequest, model_key: str) -> None:
    """Add-ons are read by the job that first needs them: the other models make room first, as
    for a model of their size."""
    _make_room_for(engine.unread_addons(request), keep=model_key)


def _make_room_for(folders: list[Path], *, keep: str = "") -> None:
    needed = sum(folder_size(folder) for folder in folders if folder.is_dir())
    if needed:
        with engines_lock:
            _make_room(needed, keep=keep)
            advertise()
