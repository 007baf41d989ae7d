"""What finishing does to the demo model's Icons: renders the demo brand's 24 prompts and 8
rephrased ones it was not trained on through the Icon asset type at Standard and High, through
the worker's own code (`worker_run.run_job`: render, refine, upscale, palette, sharpen, transparency,
SVG, stored as a job's images are), and prints a table, or with --json one JSON object.

    .venv/bin/python scripts/finishing_report.py            # table
    .venv/bin/python scripts/finishing_report.py --json     # one JSON object
    .venv/bin/python scripts/finishing_report.py --tiers standard --seeds 1

It runs in a throwaway SQLite database and media folder (nothing of var/ is touched). SVGs are
parsed and, where Playwright's Chromium is installed, rendered by Chromium (`svg_rendered`).

The palette's lookup table is built first, as a worker builds it when it starts (about a minute on
one core; `palette_table_seconds`), in a throwaway folder unless --tables names one to keep it in,
and the upscaler is loaded, as a starting worker loads it.
--no-table measures the memo a worker uses until its table is ready.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sandbox_studio import sandbox_studio

# Said in other words than the captions the demo model was trained on ("a flat blue person icon").
REPHRASED = [
    "person, blue",
    "an icon of a green phone",
    "orange key symbol",
    "purple headphones glyph",
    "a green umbrella for the weather",
    "a blue trophy for winners",
    "an orange user avatar person",
    "purple trophy badge",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--tiers", default="standard,high", help="comma-separated quality tiers")
    parser.add_argument("--seeds", type=int, default=1, help="images per prompt and tier")
    parser.add_argument("--tables", type=Path, help="folder for the palette tables (kept between runs)")
    parser.add_argument("--no-table", action="store_true", help="no lookup table: the memo alone")
    args = parser.parse_args()
    tables = "" if args.no_table else str(args.tables or "{var}/palette-tables")
    sandbox_studio("finishing-report", STUDIO_PALETTE_TABLES_DIR=tables)
    table_seconds = build_tables()
    from generation.worker.finish import prepare_finishing

    prepare_finishing()  # as a starting worker does: the upscaler loaded before the first job
    rows = run([t.strip() for t in args.tiers.split(",") if t.strip()], args.seeds)
    summary = summarise(rows) | {"palette_table": not args.no_table, "palette_table_seconds": table_seconds}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(rows, summary)


def build_tables() -> float | None:
    """The Icon palette's lookup table, built (or found) as a starting worker would: seconds taken."""
    from django.conf import settings

    from generation.finishing import table
    from generation.finishing.planner import palette_of
    from generation.models import AssetPreset

    palette = palette_of(AssetPreset.objects.get(slug="icon"))
    if settings.STUDIO_PALETTE_TABLES_DIR is None or palette is None:
        return None
    started = time.perf_counter()
    table.build(palette, settings.STUDIO_PALETTE_TABLES_DIR / table.table_name(palette))
    return round(time.perf_counter() - started, 1)


def run(tiers: list[str], seeds: int) -> list[dict[str, Any]]:
    """Each prompt as a job of the Icon type per tier, run in this process as a worker runs it."""
    from django.contrib.auth.models import User

    from generation.devtools.demo_kit import DEMO_PROMPTS
    from generation.jobs import submit
    from generation.models import AssetPreset, GenerationJob, ImageModel
    from generation.worker import run as worker_run

    user = User.objects.create_user("report")
    preset = AssetPreset.objects.get(slug="icon")
    model = ImageModel.objects.get(key="demo-brand")
    prompts = [(caption, True) for _, _, caption in DEMO_PROMPTS] + [(text, False) for text in REPHRASED]
    rows = []
    for tier in tiers:
        for prompt, trained in prompts:
            job = submit.job_create(
                owner=user, preset=preset, prompt=prompt, model=model, quality=tier, variations=seeds
            )
            started = time.perf_counter()
            worker_run.run_job(str(job.pk), worker="report")
            seconds = time.perf_counter() - started
            job = GenerationJob.objects.get(pk=job.pk)
            if job.status != "complete":
                raise SystemExit(f"{tier} {prompt!r}: job {job.status}: {job.error}")
            for image in job.images.all():
                rows.append(describe(image, tier=tier, prompt=prompt, trained=trained, job_seconds=seconds / seeds))
    return rows


def describe(image: Any, **fields: Any) -> dict[str, Any]:
    from PIL import Image

    from generation.finishing import svg as svg_stage

    with image.file.open("rb") as fh:
        png = Image.open(fh)
        png.load()
    alpha = png.getchannel("A") if png.mode in ("RGBA", "LA") else None
    svg_text = ""
    if image.svg:
        with image.svg.open("rb") as fh:
            svg_text = fh.read().decode("utf-8", "replace")
    return {
        **fields,
        "size": [image.width, image.height],
        "compliance_before": image.compliance_before,
        "compliance_after": image.compliance_after,
        # A real alpha channel: some pixels see-through, not an opaque RGBA.
        "transparent": alpha is not None and alpha.getextrema()[0] < 255,
        "svg": svg_text,
        "svg_parses": bool(svg_text) and svg_stage.is_valid(svg_text),
        "svg_bytes": len(svg_text.encode()),
        "svg_paths": svg_text.count("<path"),
        "stages": {record["stage"]: record["seconds"] for record in image.finishing},
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    svgs = [row for row in rows if row["svg"]]
    rendered = render_in_chromium([row["svg"] for row in svgs if row["svg_parses"]])
    stage_seconds: dict[str, list[float]] = defaultdict(list)
    by_tier: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        for stage, seconds in row["stages"].items():
            stage_seconds[stage].append(seconds)
            by_tier[row["tier"]][stage].append(seconds)
    before = [row["compliance_before"] for row in rows if row["compliance_before"] is not None]
    after = [row["compliance_after"] for row in rows if row["compliance_after"] is not None]
    sizes: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        label = "x".join(map(str, row["size"]))
        if label not in sizes[row["tier"]]:
            sizes[row["tier"]].append(label)
    job_seconds = [row["job_seconds"] for row in rows]
    return {
        "images": len(rows),
        "compliance_before_mean": round(statistics.mean(before), 4) if before else None,
        "compliance_after_mean": round(statistics.mean(after), 4) if after else None,
        "compliance_after_min": round(min(after), 4) if after else None,
        "svg_valid": sum(row["svg_parses"] for row in svgs) if rendered is None else rendered,
        "svg_rendered": rendered is not None,
        "svgs": len(svgs),
        "svg_mean_bytes": round(statistics.mean(row["svg_bytes"] for row in svgs)) if svgs else 0,
        "svg_mean_paths": round(statistics.mean(row["svg_paths"] for row in svgs), 1) if svgs else 0,
        "transparent": sum(row["transparent"] for row in rows),
        "sizes": dict(sizes),
        "stage_seconds": {stage: round(statistics.mean(v), 4) for stage, v in stage_seconds.items()},
        "stage_seconds_by_tier": {
            tier: {stage: round(statistics.mean(v), 4) for stage, v in stages.items()}
            for tier, stages in by_tier.items()
        },
        "finishing_share_by_tier": {tier: _share([row for row in rows if row["tier"] == tier]) for tier in by_tier},
        "job_seconds_per_image": round(statistics.mean(job_seconds), 3) if job_seconds else None,
        "finishing_share": _share(rows),
        "rephrased_compliance_after_mean": _mean(row["compliance_after"] for row in rows if not row["trained"]),
    }


def _share(rows: list[dict[str, Any]]) -> float | None:
    """Finishing's share of the jobs' time (render, finishing, storing)."""
    job = sum(row["job_seconds"] for row in rows)
    return round(sum(sum(row["stages"].values()) for row in rows) / job, 3) if job else None


def _mean(values: Any) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.mean(values), 4) if values else None


def render_in_chromium(svgs: list[str]) -> int | None:
    """How many of the SVGs Chromium draws (an <img> that loads, with some visible pixels);
    None when Playwright or its Chromium is not installed here."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not svgs:
        return 0
    script = """async (svgs) => {
        let drawn = 0;
        for (const text of svgs) {
            const img = new Image();
            img.src = "data:image/svg+xml;base64," + btoa(unescape(encodeURIComponent(text)));
            try { await img.decode(); } catch (e) { continue; }
            const canvas = document.createElement("canvas");
            canvas.width = canvas.height = 64;
            const ctx = canvas.getContext("2d");
            ctx.drawImage(img, 0, 0, 64, 64);
            const data = ctx.getImageData(0, 0, 64, 64).data;
            let visible = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) visible++;
            if (visible > 0) drawn++;
        }
        return drawn;
    }"""
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
            page = browser.new_page()
            page.set_content("<html><body></body></html>")
            drawn = int(page.evaluate(script, svgs))
            browser.close()
            return drawn
    except Exception as exc:  # no browser here: say so in the figures rather than fail
        print(f"(SVGs not rendered: {exc.__class__.__name__})", file=sys.stderr)
        return None


def print_table(rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    print(f"{'tier':9} {'prompt':34} {'size':>10} {'before':>7} {'after':>7} {'alpha':>5} {'svg B':>7} {'paths':>5}")
    for row in rows:
        before = "-" if row["compliance_before"] is None else f"{row['compliance_before']:.1%}"
        after = "-" if row["compliance_after"] is None else f"{row['compliance_after']:.1%}"
        prompt = row["prompt"] + ("" if row["trained"] else " *")
        size = "x".join(map(str, row["size"]))
        print(
            f"{row['tier']:9} {prompt:34} {size:>10} {before:>7} {after:>7} {'yes' if row['transparent'] else 'no':>5}"
            f" {row['svg_bytes']:7} {row['svg_paths']:5}"
        )
    print("(* rephrased: not a caption the demo model was trained on)\n")
    for key, value in summary.items():
        print(f"{key:32} {value}")


if __name__ == "__main__":
    main()
