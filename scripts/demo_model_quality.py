"""How on-brand the demo model is: renders the fixed demo prompts through the studio's engine
(as the Icon asset type sends them) and prints, per prompt and overall, the share of pixels
on the brand palette or background and whether the asked colour and shape came out.

    .venv/bin/python scripts/demo_model_quality.py [--model var/models/demo-brand] [--seeds 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brandstudio.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "demo" / "brand-model")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--sheet", type=Path, help="Write a contact sheet of every image here (PNG)")
    args = parser.parse_args()
    from generation.training.demo_quality import evaluate

    started = time.perf_counter()
    result = evaluate(args.model, seeds=args.seeds, size=args.size, steps=args.steps, sheet=args.sheet)
    for row in result.rows:
        print(
            f"{row.prompt:34} colour {row.colour_hits}/{row.total}  shape {row.shape_hits}/{row.total}"
            f"  on palette {row.on_palette:.1%}"
        )
    seconds = time.perf_counter() - started
    print(
        f"\n{result.total} images ({args.size}x{args.size}, {args.steps} steps) in {seconds:.1f} s: "
        f"colour right {result.colour_rate:.1%}, shape right {result.shape_rate:.1%}, both {result.both_rate:.1%}, "
        f"pixels on the palette or background {result.on_palette:.1%}"
    )


if __name__ == "__main__":
    main()
