"""Brand Studio's overhead, measured on a mid-sized FLUX-architecture pipeline on this machine's CPU.

    .venv/bin/python scripts/benchmark.py [--runs 3]

(a) one 4-image job: the raw diffusers call vs the same job through the studio (enqueue, a real
    Celery worker, PNGs written through storage, database rows): ratio, target <= 1.05
(b) 4 variations in one batched call vs 4 single calls: ratio, target <= 1.0
(c) switching an asset type's LoRA vs loading the base model from disk: share, target < 5%

It runs the embedded configuration (SQLite, filesystem broker) in a temporary folder, so it
needs nothing running and leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE, STEPS, SEEDS = 256, 12, [11, 12, 13, 14]


def spread(values: list[float]) -> str:
    return f"{min(values):.3f} to {max(values):.3f}"


def median_time(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_mid_flux(folder: Path) -> Path:
    """A FLUX.1-architecture pipeline of about 9 M parameters (the tiny default is 0.3 M)."""
    from generation.devtools.tiny import build_tiny_flux

    return build_tiny_flux(folder, width=64, heads=4, head_dim=64, layers=2, single_layers=4, rope=(8, 28, 28))


def request(**overrides):  # type: ignore[no-untyped-def]
    from generation.engine.types import GenerationRequest

    values = {"prompt": "a flat blue circle icon", "negative_prompt": "", "width": SIZE, "height": SIZE}
    values |= {"steps": STEPS, "guidance_scale": 3.5, "seeds": SEEDS}
    return GenerationRequest(**(values | overrides))


def raw_call(engine):  # type: ignore[no-untyped-def]
    import torch

    def call() -> None:
        generators = [torch.Generator("cpu").manual_seed(s) for s in SEEDS]
        engine.pipe(
            prompt="a flat blue circle icon",
            width=SIZE,
            height=SIZE,
            num_inference_steps=STEPS,
            guidance_scale=3.5,
            num_images_per_prompt=len(SEEDS),
            generator=generators,
        )

    return call


def bench_raw_vs_studio(engine, var: Path, runs: int) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    """Alternate raw calls and studio jobs, so a drift in machine speed hits both alike."""
    from django.contrib.auth.models import User
    from django.db import transaction

    from generation.jobs import submit
    from generation.management.commands.studio import worker_command
    from generation.models import AssetPreset, GenerationJob, ImageModel

    model = ImageModel.objects.create(
        key="bench-flux",
        name="Bench FLUX",
        family="flux",
        local_path="bench-flux",
        license_name="demo",
        commercial_use=True,
        max_side=1024,
        enabled=True,
    )
    preset = AssetPreset.objects.create(
        slug="bench",
        name="Bench",
        prompt_template="{subject}",
        default_width=SIZE,
        default_height=SIZE,
        allowed_sizes=[[SIZE, SIZE]],
        steps=STEPS,
        guidance_scale=3.5,
    )
    user = User.objects.create(username="bench")
    log = (var / "worker.log").open("wb")
    worker = subprocess.Popen(worker_command(name="bench@%h", beat=False), cwd=ROOT, stdout=log, stderr=log)

    def job() -> GenerationJob:
        with transaction.atomic():
            created = submit.job_create(
                owner=user, preset=preset, prompt="a flat blue circle icon", model=model, variations=4, seed=11
            )
        while not GenerationJob.objects.filter(pk=created.pk, status__in=["complete", "failed"]).exists():
            time.sleep(0.005)  # the benchmark's own polling, kept well below what it measures
        created.refresh_from_db()
        assert created.status == "complete", created.error
        return created

    raw = raw_call(engine)
    results: dict[str, list[float]] = {"raw": [], "studio": [], "render": [], "store": []}
    try:
        raw()
        job()  # warm-ups: the worker loads the model once
        for _ in range(runs):
            results["raw"].append(median_time(raw, 1))
            start = time.perf_counter()
            done = job()
            results["studio"].append(time.perf_counter() - start)
            results["render"].append(done.timings["render"])
            results["store"].append(done.timings["store"])
        return results
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def bench_batching(engine, runs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    def run(max_batch: int) -> None:
        engine.generate(request(), max_batch=max_batch, on_step=lambda s, t: None, on_images=lambda f, i: None)

    batched, single = [], []
    for _ in range(runs):  # alternated, like (a)
        batched.append(median_time(lambda: run(4), 1))
        single.append(median_time(lambda: run(1), 1))
    return statistics.median(batched), statistics.median(single)


def bench_lora_switch(model_dir: Path, var: Path, runs: int) -> tuple[float, float, float]:
    from generation.devtools.loras import make_lora
    from generation.engine.flux import FluxEngine
    from generation.engine.types import LoraSpec

    base_load = median_time(lambda: FluxEngine(model_dir, device="cpu"), runs)
    engine = FluxEngine(model_dir, device="cpu")
    style = [LoraSpec(make_lora("flux", model_dir, var / "style", seed=1), 0.85)]
    icons = [LoraSpec(make_lora("flux", model_dir, var / "icons", seed=2), 0.85)]
    start = time.perf_counter()
    engine._use_loras(style)  # first use reads the file
    first_load = time.perf_counter() - start
    engine._use_loras(icons)

    def switch() -> None:  # what a job of another asset type does before it runs
        engine._use_loras(style)
        engine.pipe.disable_lora()
        engine._use_loras(icons)

    return base_load, first_load, median_time(switch, runs * 5) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--broker",
        default="",
        help="a Redis URL (e.g. redis://127.0.0.1:6379/15), as a team server runs; default: the embedded "
        "file broker, which a worker polls every 0.1 s",
    )
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    sys.path.insert(0, str(ROOT))
    from generation.devtools.embedded import embedded_django

    embedded_django(var, broker=args.broker, STUDIO_MODELS_DIR=str(var / "models"))
    import torch

    from generation.engine.flux import FluxEngine

    model_dir = build_mid_flux(var / "models" / "bench-flux")
    engine = FluxEngine(model_dir, device="cpu")
    params = sum(
        p.numel() for c in engine.pipe.components.values() if isinstance(c, torch.nn.Module) for p in c.parameters()
    )
    print(f"Machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    shape = f"{len(SEEDS)} images of {SIZE}x{SIZE}, {STEPS} steps"
    print(f"Pipeline: FLUX.1 architecture, {params / 1e6:.1f} M parameters, {shape}")
    print(f"Median of {args.runs} runs after a warm-up.\n")

    runs_a = bench_raw_vs_studio(engine, var, args.runs)
    a = {k: statistics.median(v) for k, v in runs_a.items()}
    print("(a) one 4-image job")
    print(f"    raw diffusers call         {a['raw']:7.3f} s   (runs {spread(runs_a['raw'])})")
    print(
        f"    through the studio         {a['studio']:7.3f} s   (runs {spread(runs_a['studio'])}), submit to complete"
    )
    print(f"      of which rendering       {a['render']:7.3f} s   (the worker's own diffusers call)")
    print(f"      writing 4 PNGs + rows    {a['store']:7.3f} s")
    queue = a["studio"] - a["render"] - a["store"]
    print(f"      queue, claim, status     {queue:7.3f} s   ({'Redis' if args.broker else 'file broker'})")
    share = (a["store"] + queue) / a["raw"]
    print(f"    the studio's own share     {share:7.1%}     writes, queue, claim, status; goal 2 %")
    print(f"    ratio studio / raw         {a['studio'] / a['raw']:7.3f}     target <= 1.05\n")

    batched, single = bench_batching(engine, args.runs)
    print("(b) 4 variations")
    print(f"    one batched call           {batched:7.3f} s")
    print(f"    4 single calls             {single:7.3f} s")
    print(f"    ratio batched / single     {batched / single:7.3f}     target <= 1.0\n")

    base_load, first_lora, switch = bench_lora_switch(model_dir, var, args.runs)
    print("(c) changing asset type")
    print(f"    load the base from disk    {base_load:7.3f} s")
    print(f"    first use of a LoRA file   {first_lora:7.3f} s")
    print(f"    switch between LoRAs       {switch:7.4f} s")
    print(f"    switch / base load         {switch / base_load:7.2%}     target < 5%")


if __name__ == "__main__":
    main()
