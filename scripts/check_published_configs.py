"""Check the published model configs in generation/memory/published/.

For every JSON file there, build each component on the meta device (no weights, no download) from
its config -- diffusers classes with `cls.from_config(config)`, transformers classes with
`getattr(transformers, config_class)(**config)` then `cls(cfg)` -- count its parameters, and print
them beside the figure the file quotes from a model card or safetensors index (`published_params`),
with the difference in %. A config that fails to build, or a figure more than --tolerance % off,
makes the script exit 1.

    .venv/bin/python scripts/check_published_configs.py [--tolerance 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

import diffusers
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation.devtools.published import PUBLISHED, build  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tolerance", type=float, default=5.0, help="largest difference in %% that passes")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    diffusers.logging.set_verbosity_error()
    logging.disable(logging.WARNING)

    rows, failures = [], 0
    for path in sorted(PUBLISHED.glob("*.json")):
        card = json.loads(path.read_text())
        published = card.get("published_params", {})
        for name, component in card["components"].items():
            try:
                params = sum(p.numel() for p in build(component).parameters())
            except Exception as exc:  # a config the class rejects: report it and go on
                failures += 1
                rows.append((card["key"], name, component["class"], f"ERROR {type(exc).__name__}: {exc}", "", ""))
                continue
            figure, diff = published.get(name), ""
            if figure:
                pct = 100 * (params - figure) / figure
                diff = f"{pct:+.2f}%"
                failures += abs(pct) > args.tolerance
            rows.append(
                (
                    card["key"],
                    name,
                    component["class"],
                    f"{params / 1e9:.3f}",
                    f"{figure / 1e9:.3f}" if figure else "-",
                    diff,
                )
            )

    header = ("model", "component", "class", "params (B)", "published (B)", "diff")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(
            "  ".join(
                str(cell).ljust(w) if i < 3 else str(cell).rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    if failures:
        print(
            f"\n{failures} component(s) failed to build or are more than {args.tolerance}% off their published figure"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
