"""What a sketch does to the demo model's drawings: a hand-drawn star outline, off centre, as a
designer would upload it; the same prompt drawn with it (each "how closely" setting) and
without it. Prints the foreground IoU of the drawings with the sketch's filled outline, their
colour, and the time a job takes each way (the sketch runs strength x steps of img2img), for
each way of starting from it (as drawn, its outlines filled) and each "how closely"; and,
where the demo's canny ControlNet is there (`manage.py train_demo_controlnet`), following its
edges through it from noise.

    .venv/bin/python scripts/sketch_report.py            # table
    .venv/bin/python scripts/sketch_report.py --json     # one JSON object
    .venv/bin/python scripts/sketch_report.py --sheet docs/sketch.png

It runs the engine as the worker does (the sketch fitted to the render size as the runner
fits it) at the demo model's native size, in this process; no database.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# A right-pointing arrow, in the sketch's unit square: a shape the demo model was never taught.
ARROW = [(0.12, 0.42), (0.55, 0.42), (0.55, 0.22), (0.88, 0.5), (0.55, 0.78), (0.55, 0.58), (0.12, 0.58)]


def hand_drawn_star(size: int = 512, *, centre: tuple[float, float] = (0.42, 0.56), seed: int = 3) -> Image.Image:
    """A star outline as a quick pen sketch: wobbly points, uneven stroke, not centred."""
    rng = np.random.default_rng(seed)
    points = []
    for k in range(10):
        angle = -math.pi / 2 + k * math.pi / 5 + rng.uniform(-0.06, 0.06)
        radius = (0.36 if k % 2 == 0 else 0.16) * (1 + rng.uniform(-0.08, 0.08))
        points.append((size * (centre[0] + radius * math.cos(angle)), size * (centre[1] + radius * math.sin(angle))))
    return pen_outline(points, size, rng)


def hand_drawn_arrow(size: int = 512, *, seed: int = 3) -> Image.Image:
    """An arrow outline, wobbly as a quick pen sketch."""
    rng = np.random.default_rng(seed)
    points = [(size * (x + rng.uniform(-0.015, 0.015)), size * (y + rng.uniform(-0.015, 0.015))) for x, y in ARROW]
    return pen_outline(points, size, rng)


SKETCHES = {"star": hand_drawn_star, "arrow": hand_drawn_arrow}


def pen_outline(points: list[tuple[float, float]], size: int, rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for a, b in zip(points, [*points[1:], points[0]], strict=True):
        draw.line([a, b], fill=(20, 20, 20), width=int(size / 64 + rng.integers(0, 4)))
    return image


def filled_outline(sketch: Image.Image, size: int) -> np.ndarray:
    """The sketch's closed outline filled: what a drawing that follows it covers."""
    import cv2

    ink = (np.asarray(sketch.convert("L")) < 128).astype(np.uint8)
    contours, _ = cv2.findContours(ink, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    mask = np.zeros_like(ink)
    cv2.drawContours(mask, contours, -1, 1, thickness=-1)
    return np.asarray(Image.fromarray(mask * 255).resize((size, size))) > 127


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "demo" / "brand-model")
    parser.add_argument("--controlnet", type=Path, default=ROOT / "demo" / "brand-controlnet-canny")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--prompt", default="a flat blue star icon")
    parser.add_argument("--sketch", choices=sorted(SKETCHES), default="star", help="what the designer drew")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sheet", type=Path)
    args = parser.parse_args()
    report, rows = measure(args.model, args.prompt, args.seeds, args.controlnet, sketch=args.sketch)
    if args.sheet:
        sheet(rows, args.sheet)
        report["sheet"] = str(args.sheet)
    print(json.dumps(report, indent=2) if args.json else table(report))


def measure(
    folder: Path, prompt: str, seeds: int, controlnet: Path | None = None, *, sketch: str = "star"
) -> tuple[dict[str, Any], list[list[Image.Image]]]:
    from generation.control.sketch import CONTROL_SCALE, FOLLOW, prepare
    from generation.devtools.demo_kit import card_references, foreground, judge_glyph, read_kit_card
    from generation.devtools.demo_model import MODEL_OPTIONS
    from generation.devtools.demo_quality import ICON_TEMPLATE, _collect, _quiet
    from generation.engine import engine_class
    from generation.engine.types import ControlNetSpec, GenerationRequest

    engine = engine_class("flux")(folder, device="cpu", options=MODEL_OPTIONS)
    size = MODEL_OPTIONS["native_size"]
    drawn_by = sketch
    sketch = SKETCHES[drawn_by]()
    target = filled_outline(sketch, size)
    references = card_references(read_kit_card(folder) or {"subjects": []})
    colour = prompt.split()[2] if len(prompt.split()) > 2 else ""
    report: dict[str, Any] = {"model": str(folder), "prompt": prompt, "sketch": drawn_by, "seeds": seeds, "size": size}
    modes = ["drawing", "filled"]  # img2img; the ControlNet's canny is its own rows
    rows = [[prepare(sketch, mode, (size, size)) for mode in modes for _ in range(seeds // len(modes))]]
    settings = [("without", None, "")] + [
        (f"{mode}, {follow}", strength, mode) for mode in modes for follow, strength in FOLLOW.items()
    ]
    spec = ControlNetSpec(controlnet) if controlnet and (controlnet / "config.json").is_file() else None
    if spec:
        settings += [(f"canny ControlNet, {follow}", scale, "canny") for follow, scale in CONTROL_SCALE.items()]
    for name, strength, mode in settings:
        steering: dict[str, Any] = {}
        if mode == "canny":  # the runner's way: the sketch on paper at the job's size, edges at the render size
            steering = {"control_image": prepare(sketch, "drawing", (512, 512)), "control_edges": "canny"}
            steering |= {"controlnet": spec, "control_scale": strength}
        elif strength is not None:
            steering = {"init_image": prepare(sketch, mode, (size, size)), "strength": strength}
        request = GenerationRequest(
            prompt=ICON_TEMPLATE.replace("{subject}", prompt),
            negative_prompt="",
            width=size,
            height=size,
            steps=28,
            guidance_scale=3.5,
            seeds=list(range(seeds)),
            **steering,
        )
        drawn: list[Image.Image] = []
        engine.generate(request, max_batch=seeds, on_step=_quiet, on_images=partial(_collect, drawn))  # warm
        started, drawn = time.perf_counter(), []
        engine.generate(request, max_batch=seeds, on_step=_quiet, on_images=partial(_collect, drawn))
        seconds = time.perf_counter() - started
        ious = [float((foreground(i) & target).sum() / max(1, (foreground(i) | target).sum())) for i in drawn]
        verdicts = [judge_glyph(i, references) for i in drawn] if references else []
        report[name] = {
            "strength": strength,  # img2img strength, or the ControlNet's conditioning scale
            "iou_with_sketch": round(float(np.mean(ious)), 3),
            "iou_min": round(min(ious), 3),
            "colour_right": _share([v.colour == colour for v in verdicts]),
            "nearest_is_star": _share([v.nearest == "star" for v in verdicts]) if drawn_by == "star" else None,
            "seconds": round(seconds, 2),
        }
        rows.append(drawn)
    return report, rows


def _share(hits: list[bool]) -> float | None:
    return round(sum(hits) / len(hits), 3) if hits else None


def table(report: dict[str, Any]) -> str:
    lines = [
        f"{report['prompt']!r} with a hand-drawn {report['sketch']} on {report['model']} at {report['size']} px, "
        f"{report['seeds']} seeds",
        "| | strength (scale) | IoU with the sketch (min) | colour right | drawn as a star | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name in [key for key, value in report.items() if isinstance(value, dict)]:
        row = report[name]
        lines.append(
            f"| {name} | {row['strength'] or '–'} | {row['iou_with_sketch']} ({row['iou_min']}) | "
            f"{row['colour_right']} | {row['nearest_is_star']} | {row['seconds']} |"
        )
    return "\n".join(lines)


def sheet(rows: list[list[Image.Image]], path: Path, cell: int = 96) -> None:
    """Row 1: the sketch as the model gets it (as drawn, filled); then each setting in turn."""
    canvas = Image.new("RGB", (cell * len(rows[0]), cell * len(rows)), "white")
    for y, row in enumerate(rows):
        for x, image in enumerate(row):
            canvas.paste(image.convert("RGB").resize((cell, cell), Image.Resampling.NEAREST), (x * cell, y * cell))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


if __name__ == "__main__":
    main()
