"""What live previews cost a job: the same job with and without them, on the tiny FLUX and the demo model.

    .venv/bin/python scripts/preview_benchmark.py [--runs 5] [--device cpu]

Each job runs through the worker's own progress writer (generation.worker.progress.Progress), so the
preview's real work is in the figure: the latent->RGB projection, the WebP encoding and the
database rows, plus the progress writes both runs share. Three settings alternate, so a drift in
machine speed hits them alike: previews off (STUDIO_PREVIEW_SECONDS=0), the studio's default (one a
second), and one every step (the worst case). Target: the default costs at most 10 % of a job.

It runs on the embedded configuration (SQLite) in a temporary folder: nothing needs to run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"off": 0.0, "every second": 1.0, "every step": 1e-9}
# (label, folder or None for the tiny one, engine options, width, steps)
MODELS = [
    ("tiny FLUX (random weights)", None, {}, 512, 28),
    ("demo brand model", ROOT / "demo" / "brand-model", {"native_size": 64, "max_sequence_length": 32}, 512, 20),
]
SEEDS = [11, 12, 13, 14]


def a_running_job():  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    from generation.models import AssetPreset, GenerationJob, JobStatus

    user, _ = User.objects.get_or_create(username="bench")
    return GenerationJob.objects.create(
        owner=user,
        preset=AssetPreset.objects.first(),
        model_key="bench",
        prompt="bench",
        status=JobStatus.PROCESSING,
        lease=uuid.uuid4(),  # as job_claim leaves it: the worker's writes go through its lease
    )


def timed_job(engine, width: int, steps: int, every: float) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    from django.conf import settings

    from generation.engine.types import GenerationRequest
    from generation.worker import progress as worker_progress
    from generation.worker.progress import Progress

    settings.STUDIO_PREVIEW_SECONDS = every
    from generation.jobs.lease import Lease

    job = a_running_job()
    lease = Lease.of(job)
    progress = Progress(lease)
    written = []
    real_save = worker_progress.save_previews

    def counting_save(*args):  # type: ignore[no-untyped-def]
        written.append(1)
        real_save(*args)

    worker_progress.save_previews = counting_save
    request = GenerationRequest(
        prompt="a flat orange star icon",
        negative_prompt="",
        width=width,
        height=width,
        steps=steps,
        guidance_scale=3.5,
        seeds=SEEDS,
    )
    start = time.perf_counter()
    try:
        engine.generate(
            request, max_batch=4, on_step=progress.on_step, on_images=lambda f, i: None, on_preview=progress.on_preview
        )
    finally:
        worker_progress.save_previews = real_save
    elapsed = time.perf_counter() - start
    lease.clear_previews()
    return elapsed, len(written)


def bench(label: str, folder: Path, options: dict, width: int, steps: int, runs: int, device: str) -> None:  # type: ignore[type-arg]
    from generation.engine.flux import FluxEngine

    engine = FluxEngine(folder, device=device, options=options)
    start = time.perf_counter()
    assert engine.previewer is not None  # fitted once per engine (at the first job with previews), not per job
    fit = time.perf_counter() - start
    timed_job(engine, width, steps, 0.0)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    counts: dict[str, int] = {}
    for _ in range(runs):
        for name, every in SETTINGS.items():
            elapsed, counts[name] = timed_job(engine, width, steps, every)
            times[name].append(elapsed)
    off = statistics.median(times["off"])
    print(f"\n{label}: {len(SEEDS)} images of {width}x{width}, {steps} steps, {device}; fit once: {fit:.3f} s")
    for name in SETTINGS:
        median = statistics.median(times[name])
        overhead = (median - off) / off * 100
        print(
            f"  previews {name:>12}: {median:7.3f} s (median of {runs}, {min(times[name]):.3f} to "
            f"{max(times[name]):.3f})  {counts[name]:3d} previews  overhead {overhead:+5.1f} %"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="studio-preview-bench-"))
    sys.path.insert(0, str(ROOT))
    from generation.devtools.embedded import embedded_django

    embedded_django(var)
    import torch

    from generation.devtools.tiny import build_tiny_flux

    print(f"Machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for label, folder, options, width, steps in MODELS:
        folder = folder or build_tiny_flux(var / "tiny-flux")
        bench(label, folder, options, width, steps, args.runs, args.device)


if __name__ == "__main__":
    main()
