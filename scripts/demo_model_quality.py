"""How well the demo brand model draws its subjects: every subject on its card, asked for in a
brand colour with 2 seeds, judged by nearest reference glyph (IoU of the ink's fitted mask with
each subject's reference; right when the nearest is the one asked), IoU with the asked glyph,
colour right, and palette compliance; at the model's native size (the engine's render) and at
the size the studio delivers (an Icon job at Standard through the worker's own code: upscale,
palette, cut-out). Then the same for 20 rephrasings ("shield, blue", "an icon of a calendar").

    .venv/bin/python scripts/demo_model_quality.py                 # table
    .venv/bin/python scripts/demo_model_quality.py --json          # one JSON object
    .venv/bin/python scripts/demo_model_quality.py --sheet docs/demo-subjects.png
    .venv/bin/python scripts/demo_model_quality.py --curve var/demo-training   # accuracy by training time

--curve judges each snapshot a `train_demo_model` run kept (native size, 1 seed), for the
accuracy-against-training-time table. Everything runs in a throwaway database and media folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sandbox_studio import ROOT, sandbox_studio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "demo" / "brand-model")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--sheet", type=Path, help="write a contact sheet of the delivered subjects here (PNG)")
    parser.add_argument("--curve", type=Path, help="a train_demo_model --checkpoints folder: judge its snapshots")
    parser.add_argument("--curve-every", type=int, default=1000, help="with --curve: judge every Nth step's snapshot")
    parser.add_argument("--no-delivered", action="store_true", help="judge the native renders only (faster)")
    args = parser.parse_args()
    sandbox_studio("demo-quality", model=args.model)
    if args.curve:
        print(json.dumps(curve(args.curve, args.steps, args.curve_every), indent=1))
        return
    started = time.perf_counter()
    report = measure(
        args.model.resolve(), seeds=args.seeds, steps=args.steps, delivered=not args.no_delivered, sheet=args.sheet
    )
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


def measure(model: Path, *, seeds: int, steps: int, delivered: bool, sheet: Path | None) -> dict[str, Any]:
    from generation.devtools import demo_quality as dq

    card = dq.card_of(model)
    references = dq.card_references(card)
    plain, rephrased = dq.evaluate_native(model, seeds=seeds, steps=steps)
    report: dict[str, Any] = {
        "model": str(model),
        "subjects": len(card["subjects"]),
        "seeds": seeds,
        "native": plain.summary() | {"size": dq.MODEL_OPTIONS["native_size"]},
        "rephrased_native": rephrased.summary(),
    }
    if delivered:
        shown, other, images = delivered_scores(dq.asks(card) + dq.rephrased_asks(card), references, seeds)
        report["delivered"] = shown.summary() | {"size": images[0].size[0] if images else None}
        report["rephrased"] = other.summary()
        report["per_subject"] = shown.subjects_right()
        report["missed"] = [[d.ask.subject, d.nearest] for d in shown.drawings if d.nearest != d.ask.subject]
        report["rephrased_missed"] = [[d.ask.prompt, d.nearest] for d in other.drawings if d.nearest != d.ask.subject]
        if sheet:
            dq.contact_sheet(images[: len(card["subjects"]) * seeds], seeds * 8, sheet)
    main_score, main_other = (
        (report["delivered"], report["rephrased"]) if delivered else (report["native"], report["rephrased_native"])
    )
    # The figures the issue names, at the delivered size where it was measured.
    report |= {
        "images": main_score["images"],
        "nearest_accuracy": main_score["nearest_accuracy"],
        "colour_accuracy": main_score["colour_accuracy"],
        "mean_iou": main_score["mean_iou"],
        "rephrased_nearest_accuracy": main_other["nearest_accuracy"],
    }
    return report


def delivered_scores(items: list[Any], references: dict[str, Any], seeds: int) -> tuple[Any, Any, list[Any]]:
    """Each ask as an Icon job at Standard, run in this process as a worker runs it."""
    from django.contrib.auth.models import User

    from generation.devtools import demo_quality as dq
    from generation.worker import finish as worker_finish

    worker_finish.prepare_finishing()
    user = User.objects.create_user("quality")
    plain, other, images = dq.Score(), dq.Score(), []
    for ask in items:
        for stored, image in dq.job_images(user, ask.prompt, seeds=seeds, worker="quality"):
            drawing = dq.judge_drawing(
                image, ask, references, compliance=stored.compliance_before, compliance_after=stored.compliance_after
            )
            (other if ask.rephrased else plain).drawings.append(drawing)
            images.append(image)
    return plain, other, images


def curve(checkpoints: Path, steps: int, every: int) -> list[dict[str, Any]]:
    """Native accuracy of every snapshot of a training run, with its step and training time."""
    from generation.devtools import demo_quality as dq
    from generation.devtools.demo_model import write_kit_card

    log = [json.loads(line) for line in (checkpoints / "snapshots" / "log.jsonl").read_text().splitlines()]
    base = checkpoints / "base"
    subjects = (
        list(json.loads((base / "demo-kit.json").read_text())["subjects"])
        if (base / "demo-kit.json").is_file()
        else None
    )
    points = []
    for entry in log:
        snapshot = checkpoints / "snapshots" / f"transformer-{entry['step']:06d}.safetensors"
        if not snapshot.is_file() or entry["step"] % every:
            continue
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(shutil.copytree(base, Path(scratch) / "model"))
            shutil.copy(snapshot, folder / "transformer" / "diffusion_pytorch_model.safetensors")
            if subjects is None:
                raise SystemExit(f"{base} has no demo-kit.json")
            write_kit_card(folder, subjects)
            plain, _ = dq.evaluate_native(folder, seeds=1, steps=steps, rephrased=False)
        points.append(entry | plain.summary())
        print(json.dumps(points[-1]), file=sys.stderr)
    return points


def print_table(report: dict[str, Any]) -> None:
    for name in ("native", "delivered", "rephrased_native", "rephrased"):
        if name in report:
            s = report[name]
            print(
                f"{name:17} {s['images']:4} images  nearest reference right {s['nearest_accuracy']:.1%}  "
                f"colour right {s['colour_accuracy']:.1%}  mean IoU {s['mean_iou']:.3f}"
                + (f"  compliance {s['compliance']:.1%} -> {s['compliance_after']:.1%}" if s.get("compliance") else "")
            )
    if report.get("missed"):
        print("missed (asked, drawn nearest to):", ", ".join(f"{a}->{b}" for a, b in report["missed"]))
    print(f"{report['subjects']} subjects, {report['seeds']} seeds, {report['seconds']} s")


if __name__ == "__main__":
    main()
