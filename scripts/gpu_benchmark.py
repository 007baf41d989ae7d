"""How fast the studio draws on a GPU: full-size, architecture-true pipelines with random weights.

    .venv/bin/python scripts/gpu_benchmark.py [--models flux1-dev,flux2-klein-4b,sdxl-base] [--json]
    .venv/bin/python scripts/gpu_benchmark.py --tiny     # the same run on the tiny configs, on CPU

Each model is built from its published config (generation/memory/published/) with random weights,
saved as a diffusers folder (speed does not depend on weight values; nothing is downloaded), then
drawn at 1024x1024, 4 images, with the asset type's steps, three ways: a raw diffusers call (eager,
bf16, the whole pipeline on the card), the studio's job path (a job submitted, claimed, loaded by
the card's memory plan, rendered, its PNGs, thumbnails and rows stored), and the studio with a
speed profile (regional compilation, the best attention backend installed; then the family's step
cache as well: First Block Cache at 0.35 for FLUX.1, TaylorSeer every 3 steps for FLUX.2 klein).
It prints seconds per image, steps per second, peak GPU memory, the first job's latency (load and
compile included) and the studio's own share over the raw call; then the studio again under a T4-
and an A10G-sized cap (`torch.cuda.set_per_process_memory_fraction`, the plan made for that card).
Without a CUDA GPU it runs on the tiny configs at 64x64 and says so: its
figures are no GPU figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VARIATIONS = 4
# The speed profiles drawn besides the plain studio; the step cache is the family's first one
# (engine/options.py CACHE_METHODS), none where it runs none.
COMPILED: dict[str, Any] = {"compile": "always", "attention": "auto"}
CACHE_VALUES = {"first_block": 0.35, "taylorseer": 3}
CAPS = ("t4", "a10g")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="flux1-dev,flux2-klein-4b,sdxl-base")
    parser.add_argument("--tiny", action="store_true", help="the tiny configs on CPU (default without CUDA)")
    parser.add_argument("--steps", type=int, default=28, help="the asset type's Standard steps")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="studio-gpu-bench-"))
    sys.path.insert(0, str(ROOT))
    from generation.devtools.embedded import embedded_django

    embedded_django(var, STUDIO_MODELS_DIR=str(var / "models"), STUDIO_PRELOAD_ENGINE="0")
    import torch

    tiny = args.tiny or not torch.cuda.is_available()
    side = 64 if tiny else 1024
    device = "cpu" if tiny else "cuda"
    results: dict[str, Any] = {"device": device_name(torch, tiny), "side": side, "models": {}}
    if not args.json:
        print(f"{results['device']}, {side}x{side}, {VARIATIONS} images a job")
        if tiny:
            print("No CUDA GPU here: the tiny configs on CPU. These are no GPU figures.\n")
    try:
        for key in args.models.split(","):
            results["models"][key] = bench_model(key, var, tiny=tiny, side=side, steps=args.steps, device=device)
            if not args.json:
                report(key, results["models"][key])
    finally:
        shutil.rmtree(var, ignore_errors=True)
    if args.json:
        print(json.dumps(results))


def device_name(torch: Any, tiny: bool) -> str:
    if tiny:
        return f"CPU ({os.cpu_count()} cores), torch {torch.__version__}"
    return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"


def bench_model(key: str, var: Path, *, tiny: bool, side: int, steps: int, device: str) -> dict[str, Any]:
    from generation.devtools.published import published_models

    spec = next(m for m in published_models() if m["key"] == key)
    folder = build_folder(spec, var / "models" / key, tiny=tiny)
    steps = 4 if spec["family"] == "flux2" else steps  # klein is distilled to 4 steps
    out: dict[str, Any] = {"steps": steps, "raw": raw_call(spec, folder, side, steps, device)}
    out["studio"] = studio_jobs(key, spec, folder, side, steps, options={}, name="studio")
    for name, speed in profiles(spec["family"]).items():
        out[name] = studio_jobs(key, spec, folder, side, steps, options={"speed": speed}, name=name)
    if device == "cuda":
        for cap in CAPS:
            run = lambda cap=cap: studio_jobs(key, spec, folder, side, steps, {}, cap)  # noqa: E731
            out[f"studio on a {cap} cap"] = capped(cap, run)
    return out


def profiles(family: str) -> dict[str, dict[str, Any]]:
    from generation.engine.options import CACHE_METHODS

    found: dict[str, dict[str, Any]] = {"compiled": COMPILED}
    if methods := CACHE_METHODS.get(family):
        cache = {"standard": {"method": methods[0], "value": CACHE_VALUES[methods[0]]}}
        found[f"compiled + {methods[0]} cache"] = COMPILED | {"cache": cache}
    return found


def build_folder(spec: dict[str, Any], folder: Path, *, tiny: bool) -> Path:
    """The tiny pipeline of the family (its tokenizers and scheduler serve the full size too: token
    ids stay below every published vocabulary), with the published components in place of its own."""
    import torch

    from generation.devtools.published import build
    from generation.devtools.tiny import TINY_BUILDERS

    TINY_BUILDERS[spec["family"]](folder)
    if tiny:
        return folder
    for name, component in spec["components"].items():
        module = build(component).to_empty(device="cpu")
        with torch.no_grad():
            for param in module.parameters():
                param.normal_(0, 0.02)
        shutil.rmtree(folder / name)
        module.to(torch.bfloat16).save_pretrained(folder / name)  # type: ignore[operator]
        del module
    return folder


def raw_call(spec: dict[str, Any], folder: Path, side: int, steps: int, device: str) -> dict[str, Any]:
    """Plain diffusers, eager, the whole pipeline on the device in bf16 (fp32 on the CPU)."""
    import diffusers
    import torch

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    pipe = getattr(diffusers, spec["pipeline"]).from_pretrained(folder, torch_dtype=dtype, local_files_only=True)
    try:
        pipe.to(device)
    except torch.OutOfMemoryError:
        return {"error": "does not fit the card in bf16"}
    pipe.set_progress_bar_config(disable=True)

    def call() -> None:
        generator = [torch.Generator("cpu").manual_seed(seed) for seed in range(VARIATIONS)]
        pipe(  # noqa: F821 (bound below, before the first call)
            prompt="a flat blue shield icon",
            width=side,
            height=side,
            num_inference_steps=steps,
            generator=generator,
            num_images_per_prompt=VARIATIONS,
        )

    call()  # warm-up
    reset_peak(device)
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "peak_gb": peak_gb(device)}
    del pipe
    free(device)
    return result


def studio_jobs(key: str, spec: dict[str, Any], folder: Path, side: int, steps: int, options: dict, name: str):  # type: ignore[no-untyped-def]
    """Two jobs through the studio's job path, in this process: the first loads (and compiles)."""
    from django.contrib.auth.models import User

    from generation.models import AssetPreset, ImageModel
    from generation.worker import engines

    engines._engines.clear()
    free("cuda")
    entry_key = f"{key}-{name}".replace(" ", "-")[:90]
    model, _ = ImageModel.objects.update_or_create(
        key=entry_key,
        defaults={
            "name": entry_key,
            "family": spec["family"],
            "local_path": str(folder),
            "license_name": "benchmark",
            "commercial_use": True,
            "max_side": max(side, 1024),
            "enabled": True,
            "options": options,
            "default_steps": steps,
            "default_guidance": 0 if spec["family"] == "flux2" else None,
        },
    )
    preset, _ = AssetPreset.objects.update_or_create(
        slug="gpu-bench",
        defaults={
            "name": "GPU bench",
            "prompt_template": "{subject}",
            "default_width": side,
            "default_height": side,
            "allowed_sizes": [[side, side]],
            "steps": steps,
            "guidance_scale": 3.5,
        },
    )
    user, _ = User.objects.get_or_create(username="bench")
    first = run_job(user, preset, model)
    warm = run_job(user, preset, model)
    images = warm["job"].images_total
    render = warm["job"].timings.get("render", 0.0)
    return {
        "first_job_seconds": first["seconds"],
        "seconds": warm["seconds"],
        "seconds_per_image": warm["seconds"] / images,
        "steps_per_second": steps / render * images if render else None,
        "render_seconds": render,
        "store_seconds": warm["job"].timings.get("store"),
        "peak_gb": warm["peak_gb"],
        "speed": warm["job"].speed,
        "memory_plan": (warm["job"].memory_plan or {}).get("summary", ""),
    }


def run_job(user, preset, model) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from django.db import transaction

    from generation.jobs import submit
    from generation.worker import run as worker_run

    device = "cuda" if _cuda() else "cpu"
    reset_peak(device)
    start = time.perf_counter()
    with transaction.atomic():
        job = submit.job_create(owner=user, preset=preset, prompt="a flat blue shield icon", model=model,
                                variations=VARIATIONS, seed=11)  # fmt: skip
    worker_run.run_job(str(job.pk), worker="bench@local")
    seconds = time.perf_counter() - start
    job.refresh_from_db()
    if job.status != "complete":
        raise SystemExit(f"{model.key}: the job failed: {job.error}")
    return {"job": job, "seconds": seconds, "peak_gb": peak_gb(device)}


def capped(card_key: str, run):  # type: ignore[no-untyped-def]
    """The studio as a worker with a smaller card would run it: the plan made for that card, and
    the process allowed no more of this card's memory than that card has."""
    import torch

    from generation.memory.cards import card_of
    from generation.worker import engines

    card = card_of(card_key)
    total = torch.cuda.get_device_properties(0).total_memory / 2**30
    real = engines.worker_card
    engines.worker_card = lambda: card
    torch.cuda.set_per_process_memory_fraction(min(1.0, card.gb / total))
    try:
        return run()
    except Exception as exc:  # report it and go on with the next cap
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        engines.worker_card = real


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available() and os.environ.get("STUDIO_DEVICE", "auto") != "cpu"


def reset_peak(device: str) -> None:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device: str) -> float | None:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return None


def free(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def report(key: str, result: dict[str, Any]) -> None:
    raw = result["raw"].get("seconds")
    print(f"## {key} ({result['steps']} steps)")
    print(f"  {'':24} {'s/image':>8} {'steps/s':>8} {'peak GB':>8} {'first job s':>12} {'share':>7}")
    if raw:
        print(f"  {'raw diffusers (eager)':24} {raw / VARIATIONS:8.3f} {result['steps'] * VARIATIONS / raw:8.2f} "
              f"{_gb(result['raw']['peak_gb'])} {'':>12} {'':>7}")  # fmt: skip
    else:
        print(f"  raw diffusers: {result['raw'].get('error')}")
    for name, row in result.items():
        if name in ("raw", "steps"):
            continue
        if "error" in row:
            print(f"  {name:24} {row['error']}")
            continue
        share = f"{(row['seconds'] - raw) / raw:+7.1%}" if raw else ""
        steps_s = f"{row['steps_per_second']:8.2f}" if row["steps_per_second"] else f"{'-':>8}"
        print(f"  {name:24} {row['seconds_per_image']:8.3f} {steps_s} {_gb(row['peak_gb'])} "
              f"{row['first_job_seconds']:12.2f} {share:>7}")  # fmt: skip
    print()


def _gb(value: float | None) -> str:
    return f"{value:8.2f}" if value is not None else f"{'-':>8}"


if __name__ == "__main__":
    main()
