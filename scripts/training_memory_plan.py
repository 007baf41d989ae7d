"""Training memory plans for the published full-size models on the cards a team has.

    .venv/bin/python scripts/training_memory_plan.py [--cards t4,a10g,a100-40,h100] [--json | --markdown]

For FLUX.1-dev, FLUX.2 [klein] 4B, Z-Image, Qwen-Image and HiDream-I1 (built on the meta device
from generation/memory/published/, nothing downloaded), at rank 16 and 32 and at 512 and 1024 px:
the predicted peak of a LoRA run without memory savers and with each added in turn
(generation/memory/training.py), and the cheapest card each fits. Weights are exact; the LoRA's
size and the activations are estimates a GPU run has to confirm (docs/benchmarks.md). Runs on CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brandstudio.settings")
os.environ.setdefault("SECRET_KEY", "training-memory-plan")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODELS = ("flux1-dev", "flux2-klein-4b", "z-image-turbo", "qwen-image", "hidream-i1-full")
# The cards of the issue, cheapest first: T4 16, A10G 24, A100 40 and 80, H100 80 GB.
CARDS = "t4,a10g,a100-40,80,h100"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", default=CARDS)
    parser.add_argument("--json", action="store_true", help="one JSON line per model and run size")
    parser.add_argument("--markdown", action="store_true", help="the table of docs/benchmarks.md")
    args = parser.parse_args()

    from generation.devtools.published import components_of, published_models
    from generation.memory.cards import cards_of
    from generation.memory.training import RunSize, ladder, plan_training, training_parts

    cards = cards_of(args.cards)
    biggest = max(cards, key=lambda card: card.gb)
    models = {model["key"]: model for model in published_models()}
    if args.markdown:
        print(f"| model | run | {SAVERS} | encoding | cheapest card |")
        print("|---|---|---|---|---|---|---|---|---|---|")
    for key in MODELS:
        components = components_of(models[key])
        for rank in (16, 32):
            for resolution in (512, 1024):
                size = RunSize(rank=rank, resolution=resolution)
                # Peaks per rung on the largest card (bf16, as every card but the T4 computes); the
                # captions' encoding is shown apart: where it does not fit a card, it runs on the CPU.
                rungs = [training_parts(components, biggest, size, s) for s in ladder(biggest)]
                row = {
                    "model": key,
                    "name": models[key]["name"],
                    "rank": rank,
                    "resolution": resolution,
                    "peaks_gb": [round(parts["training"] / 2**30, 1) for parts in rungs],
                    "encoding_gb": round(max(parts["encoding"] for parts in rungs) / 2**30, 1),
                    "cheapest": next((p for c in cards if (p := plan_training(components, c, size)).fits), None),
                }
                _print(row, json_lines=args.json, markdown=args.markdown)
    if not (args.json or args.markdown):
        print(f"\ntraining peak, GB: {SAVERS.replace(' |', ',')};")
        print(
            "encoding: each encoder's visit with the VAE when embeddings are cached (on the CPU where it does not fit)"
        )


SAVERS = "no savers | + cached embeddings | + 8-bit AdamW | + checkpointing | + int8 base | + nf4 base"


def _print(row, *, json_lines, markdown):  # type: ignore[no-untyped-def]
    cheapest = row.pop("cheapest")
    where = f"{cheapest.card.name} ({cheapest.savers})" if cheapest else "none of these"
    if json_lines:
        print(json.dumps(row | {"cheapest": cheapest.as_json() if cheapest else None}))
    elif markdown:
        cells = " | ".join(f"{p:.1f}" for p in row["peaks_gb"])
        print(
            f"| {row['name']} | r{row['rank']} {row['resolution']} px | {cells} | {row['encoding_gb']:.1f} | {where} |"
        )
    else:
        cells = "  ".join(f"{p:6.1f}" for p in row["peaks_gb"])
        run = f"{row['name']:18} r{row['rank']:<3} {row['resolution']:5} px"
        print(f"{run}  {cells}  GB; encoding {row['encoding_gb']:4.1f}  -> {where}")


if __name__ == "__main__":
    main()
