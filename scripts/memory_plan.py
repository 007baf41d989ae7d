"""Memory plans for the published full-size models on the cards a team has, from configs alone.

    .venv/bin/python scripts/memory_plan.py [--cards t4,a10g,l4,a100-40,h100] [--size 1024] [--json | --markdown]

Each model of generation/memory/published/ is built on the meta device from its published
configs (exact parameter counts, nothing downloaded, no weights in memory); the planner
(generation/memory/plan.py) then picks, for each card, the fastest arrangement that fits: which
components are quantized and how, which leave the GPU after use, and the predicted peak. Weights
are exact; activations are an estimate that a GPU run has to confirm (docs/benchmarks.md).
Runs on CPU in well under a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brandstudio.settings")
os.environ.setdefault("SECRET_KEY", "memory-plan")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", default="t4,a10g,l4,a100-40,h100")
    parser.add_argument("--size", type=int, default=1024, help="the largest side the asset types ask for")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", action="store_true", help="the table of docs/models.md")
    parser.add_argument("--fits", action="store_true", help="the README's table: fits on which card, how")
    args = parser.parse_args()

    from generation.devtools.published import components_of, published_models
    from generation.memory.cards import cards_of
    from generation.memory.plan import Job, plan_for

    start = time.perf_counter()
    cards = cards_of(args.cards)
    job = Job(args.size, args.size)
    rows = []
    for model in published_models():
        components = components_of(model)
        plans = {card.key: plan_for(components, card, job) for card in cards}
        rows.append((model, components, plans))
    if args.json:
        print(json.dumps([_as_json(model, components, plans) for model, components, plans in rows], indent=2))
        return
    if args.markdown:
        _markdown(rows, cards)
        return
    if args.fits:
        _fits(rows, cards)
        return
    for model, components, plans in rows:
        print(f"\n## {model['name']} ({model['repo']})")
        for c in components:
            print(f"  {c.name:16} {c.klass:36} {c.params / 1e9:7.3f} B params  {c.params * 2 / 2**30:6.1f} GB in bf16")
        for key, plan in plans.items():
            verdict = "fits" if plan.fits and not plan.sequential else ("sequential" if plan.fits else "DOES NOT FIT")
            print(f"  {key:8} {verdict:12} {plan.summary()}")
    print(f"\n{len(rows)} models, {len(cards)} cards, at {args.size}x{args.size}: {time.perf_counter() - start:.1f} s")


def _markdown(rows, cards):  # type: ignore[no-untyped-def]
    """One row a model: its weights in bf16, then per card what is quantized or offloaded, and the peak."""
    print("| model | bf16 weights (GB) | " + " | ".join(f"{c.name} ({c.gb:g} GB)" for c in cards) + " |")
    print("|---|---|" + "---|" * len(cards))
    for model, components, plans in rows:
        weights = sum(c.params for c in components) * 2 / 2**30
        cells = [_cell(plan) for plan in plans.values()]
        print(f"| {model['name']} | {weights:.1f} | " + " | ".join(cells) + " |")


def _fits(rows, cards):  # type: ignore[no-untyped-def]
    """One row a model: on each card, the denoiser's precision where it fits without streaming."""
    print("| model | " + " | ".join(f"{c.name.removeprefix('NVIDIA ')}" for c in cards) + " |")
    print("|---|" + "---|" * len(cards))
    for model, _components, plans in rows:
        print(f"| {model['name']} | " + " | ".join(_fit(plan) for plan in plans.values()) + " |")


def _fit(plan):  # type: ignore[no-untyped-def]
    if not plan.fits or plan.sequential:
        return "no (streamed: minutes an image)" if plan.fits else "no"
    denoiser = next(iter(plan.choices.values()))
    offloaded = any(choice.placement == "offload" for choice in plan.choices.values())
    return f"yes, {denoiser.precision}{' + offload' if offloaded else ''}"


def _cell(plan):  # type: ignore[no-untyped-def]
    if not plan.fits:
        return "does not fit"
    if plan.sequential:
        return f"streamed ({plan.peak_gb:g})"
    changed = [
        f"{name} {choice.precision}{' off' if choice.placement == 'offload' else ''}"
        for name, choice in plan.choices.items()
        if choice.precision not in ("bf16", "fp16") or choice.placement != "gpu"
    ]
    return f"{', '.join(changed) or 'all ' + plan.card.compute} ({plan.peak_gb:g})"


def _as_json(model, components, plans):  # type: ignore[no-untyped-def]
    return {
        "model": model["key"],
        "repo": model["repo"],
        "components": {
            c.name: {"class": c.klass, "params": c.params, "linear_params": c.linear_params} for c in components
        },
        "plans": {key: {**plan.as_json(), "sequential": plan.sequential} for key, plan in plans.items()},
    }


if __name__ == "__main__":
    import django

    django.setup()
    main()
