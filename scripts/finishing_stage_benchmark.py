"""What each image-only finishing stage costs per image, at 512, 1024, 2048 and 4096 px.

    .venv/bin/python scripts/finishing_stage_benchmark.py [--runs 3] [--colour blue] [--shape heart]

The image is a demo-kit icon drawn at 1024 px (at the size itself below that) and upscaled with Lanczos,
as the worker's size stage hands it on: the stages then see upscaled edges, not perfect ones. The stages
run in the worker's order, each on the previous one's output: compliance (before), palette correction,
unsharp mask, transparent background, compliance (after), SVG trace. Seconds are the median of --runs.
Palette figures are the worst case: each run starts with an empty memo and no lookup table (a worker's
first image of a brand before its table is built); with the table, they are a lookup (finishing_report).
Targets: compliance well under 0.2 s at 1024 px and a few tenths at 4096; the trace under 1 s at 1024 px.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZES = (512, 1024, 2048, 4096)
DRAWN = 1024  # draw_icon draws at 4× and shrinks: drawing 4096 px directly would need a 16k canvas


def timed(function: Callable[[], Any], runs: int) -> tuple[float, Any]:
    from generation.finishing import table

    seconds, result = [], None
    for _ in range(runs):
        table.judged.cache_clear()  # a cold memo each run
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--colour", default="orange")
    parser.add_argument("--shape", default="heart")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    from PIL import Image

    from generation.devtools.demo_kit import draw_icon
    from generation.finishing import palette, sharpen, svg, transparency
    from generation.finishing.colours import colours_of, image_words
    from generation.finishing.plan import Palette

    brand = Palette(("#0f6cbd", "#107c10", "#f7630c", "#8764b8"), "#f6f7f9", 10.0)
    warm = draw_icon(args.colour, args.shape, size=64)
    svg.trace(transparency.cut_out(palette.correct(warm, brand), brand.background, 10.0), brand)  # imports

    header = f"{'size':>6} {'colours':>8} {'before':>8} {'correct':>8} {'sharpen':>8} {'cut-out':>8} {'after':>8}"
    print(f"{header} {'trace':>8} {'svg bytes':>10} {'paths':>6}  compliance before → after")
    for size in SIZES:
        drawn = draw_icon(args.colour, args.shape, size=min(size, DRAWN), rng=random.Random(7))
        image = drawn.resize((size, size), Image.Resampling.LANCZOS) if size > DRAWN else drawn
        colours = len(colours_of(image_words(image)[0])[0])
        t_before, before = timed(lambda image=image: palette.compliance(image, brand), args.runs)
        t_correct, corrected = timed(lambda image=image: palette.correct(image, brand), args.runs)
        t_sharpen, sharp = timed(lambda image=corrected: sharpen.unsharp(image, 1.0, 40), args.runs)
        t_cut, cut = timed(lambda image=sharp: transparency.cut_out(image, brand.background, 10.0), args.runs)
        t_after, after = timed(lambda image=cut: palette.compliance(image, brand), args.runs)
        t_trace, text = timed(lambda image=cut: svg.trace(image, brand), args.runs)
        print(
            f"{size:>6} {colours:>8} {t_before:>8.3f} {t_correct:>8.3f} {t_sharpen:>8.3f} {t_cut:>8.3f} "
            f"{t_after:>8.3f} {t_trace:>8.3f} {len(text.encode()):>10} {text.count('<path'):>6}  "
            f"{before:.4f} → {after:.4f}"
        )


if __name__ == "__main__":
    main()
