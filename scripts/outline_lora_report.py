"""Brand training proven on assets nobody here drew: a LoRA that teaches the demo model Fluent's
*regular* (outline) style, made through the training pages as a staff user would.

1. A zip of Fluent regular glyphs (--train-subjects of the model's subjects, 30, each in --colours
   brand colours, 2, in turn: 60 icons of 512 px, captioned "a flat {colour} {subject} icon,
   outline style") is uploaded to a new training set through the training pages; the set's report is printed.
2. A run with the studio's defaults for the model (or --steps/--rank/... overrides) trains in this
   process as a worker runs it, and the new version is published through the pages.
3. Every subject on the model's card (those left out of the set too) is asked for, in a brand
   colour, with the LoRA (the asset type now uses it) and without (the job's "no LoRA" choice),
   and judged: ink coverage (share of the image that is ink: outlines have far less), IoU of the
   ink with the regular and with the filled reference glyph, colour right, palette compliance.

    .venv/bin/python scripts/outline_lora_report.py           # table
    .venv/bin/python scripts/outline_lora_report.py --json    # one JSON object
    .venv/bin/python scripts/outline_lora_report.py --sheet docs/outline-lora.png
    .venv/bin/python scripts/outline_lora_report.py --family flux2 --train-subjects 10 --steps 300

--family runs it on a tiny random-weight pipeline of another trainable family instead
(generation.devtools.tiny, built in the sandbox's models folder, with a kit card listing the demo
model's subjects, registered at a native size of 64 px as the demo model is): it draws noise, so
its figures show that the family's LoRA trains, loads and changes the drawings through the pages,
not a style.

It needs the icon package (`npm ci --prefix demo/kit`) and runs in a throwaway database and
media folder. `tests/training/test_outline_lora.py` runs the same path with tiny settings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from sandbox_studio import ROOT, sandbox_studio

# The trainable families with a tiny pipeline (generation.training.defaults.FAMILY_DEFAULTS and
# generation.devtools.tiny.TINY_BUILDERS, named here so --help needs neither torch nor Django).
FAMILIES = ("flux", "flux2", "hidream", "qwenimage", "sd3", "sdxl", "zimage")
OVERRIDES = ("steps", "rank", "learning_rate", "batch_size", "caption_dropout", "prior_images", "prior_weight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "demo" / "brand-model")
    parser.add_argument(
        "--family",
        choices=FAMILIES,
        help="a tiny random-weight pipeline of this family instead of the demo model",
    )
    parser.add_argument("--train-subjects", type=int, default=30, help="subjects in the training set")
    parser.add_argument("--colours", type=int, default=2, help="brand colours per trained subject (1-4)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--measure-subjects",
        type=int,
        help="ask for the first this many subjects (default: all; the set's are among them)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sheet", type=Path, help="write a contact sheet (each subject without, then with, the LoRA)")
    for name in OVERRIDES:
        parser.add_argument("--" + name.replace("_", "-"), type=float, help=f"override the default {name}")
    args = parser.parse_args()
    sandbox_studio("outline-lora", model=args.model, STUDIO_LORA_ROOT="{var}/loras", ALLOWED_HOSTS="testserver")
    from generation.devtools.demo_kit import read_kit_card
    from generation.devtools.outline_experiment import Experiment, install_tiny, lora_change
    from generation.devtools.tiny import TINY_BUILDERS
    from generation.model_files import local_weights
    from generation.models import ImageModel
    from generation.training.defaults import FAMILY_DEFAULTS

    assert set(FAMILIES) == set(FAMILY_DEFAULTS) & set(TINY_BUILDERS), "FAMILIES here is out of date"
    model_key = "demo-brand"
    if args.family:
        card = read_kit_card(local_weights(ImageModel.objects.get(key=model_key)))
        assert card is not None, "the demo model has no demo-kit.json"
        model_key = install_tiny(args.family, list(card["subjects"])).key
    overrides = {name: getattr(args, name) for name in OVERRIDES if getattr(args, name) is not None}
    started = time.perf_counter()
    experiment = Experiment(
        train_subjects=args.train_subjects,
        colours_per_subject=args.colours,
        seeds=args.seeds,
        overrides=overrides,
        model_key=model_key,
        measure_subjects=args.measure_subjects,
        sheet=args.sheet.resolve() if args.sheet else None,
    )
    report = experiment.run()
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["model"] = model_key
    report["lora_change"] = lora_change(model_key)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


def print_table(report: dict[str, Any]) -> None:
    print(f"model: {report['model']}")
    print(f"training set: {report['set_images']} images, report score {report['report_score']}")
    print(f"run: {json.dumps(report['run_params'])} in {report['training_seconds']} s")
    for name in ("without_lora", "with_lora"):
        s = report[name]
        print(
            f"{name:13} ink {s['ink']:.3f}  IoU regular {s['iou_regular']:.3f}  IoU filled {s['iou_filled']:.3f}  "
            f"closer to regular {s['closer_to_regular']:.0%} (unseen {s['closer_to_regular_unseen']:.0%})  "
            f"colour right {s['colour_right']:.0%}  compliance {s['compliance']:.1%}"
        )
    print(f"the LoRA moves the same seed's render by {report['lora_change']} of 255 per pixel (mean)")
    print(f"{report['subjects']} subjects, {report['unseen_subjects']} of them not in the set; {report['seconds']} s")


if __name__ == "__main__":
    main()
