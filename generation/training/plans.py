"""A training run's memory plan on the workers' card, before it starts (web side, no torch).

The card is the smallest of STUDIO_WORKER_CARDS: a run queued on `training` may land on any
worker, so it must fit the smallest. The plan comes from the model folder's headers
(`model_files.installed_components`) and the run's rank, resolution and batch; the run records
it and the trainer applies its savers (generation/training/lora.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from ..memory.cards import Card, CardError, cards_of
from ..memory.training import RunSize, TrainingPlan, plan_training, smaller_fit
from ..model_files import installed_components
from ..models import ImageModel


class PlanRefused(ValueError):
    """The run cannot fit the card, with the settings that would."""


def training_card() -> Card | None:
    try:
        cards = cards_of(settings.STUDIO_WORKER_CARDS)
    except CardError:
        return None  # the admin's model check says what is wrong with the setting
    return min(cards, key=lambda card: card.gb) if cards else None


def run_size(params: dict[str, Any]) -> RunSize:
    return RunSize(rank=int(params["rank"]), resolution=int(params["resolution"]), batch=int(params["batch_size"]))


def run_plan(model: ImageModel, params: dict[str, Any]) -> TrainingPlan | None:
    """The run's plan on the workers' card; None where no card is set (CPU workers) or the
    model's weights are not on this machine (the worker plans again as it starts)."""
    card = training_card()
    components = installed_components(model) if card else None
    if card is None or not components:
        return None
    return plan_training(components, card, run_size(params))


def checked_plan(model: ImageModel, params: dict[str, Any]) -> dict[str, Any]:
    """The plan to record on the run; PlanRefused where even all the savers do not fit."""
    plan = run_plan(model, params)
    if plan is None:
        return {}
    if not plan.fits:
        raise PlanRefused(refusal(model, plan))
    return plan.as_json()


def refusal(model: ImageModel, plan: TrainingPlan) -> str:
    card = plan.card
    text = (
        f"{model.name} at {plan.size} needs about {plan.peak_gb:g} GB even with every memory saver "
        f"({plan.savers}); the workers' card is a {card.name} ({card.gb:g} GB)."
    )
    components = installed_components(model) or []
    smaller = smaller_fit(components, card, plan.size)
    if smaller is None:
        return text + f" No smaller run fits it: train {model.get_family_display()} on a larger card."
    return text + f" It fits at {smaller.size} ({smaller.peak_gb:g} GB, {smaller.savers}): set those under Advanced."
