"""What the size stage costs per image with the demo upscaler, tiled: seconds and peak memory.

    .venv/bin/python scripts/upscale_benchmark.py [--device cpu|cuda|auto] [--runs 2] [--file demo-icons-4x.safetensors]

Each case runs in a fresh Python process (after loading the model and one warm-up pass on a small
image), so its memory figure is its own: on CPU the rise of the process's peak resident memory
(ru_maxrss) during the call, on CUDA `torch.cuda.max_memory_allocated`. The seconds are the best
of `--runs`. Cases: 512 -> 1024, 1024 -> 2048 (one 4x pass, then Lanczos down) and 1024 -> 4096
(one pass). Nothing else needs to run: no database, no broker.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = [(512, 1024), (1024, 2048), (1024, 4096)]

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from django.conf import settings
settings.configure(STUDIO_UPSCALERS_DIR={folder!r})
import torch
from generation.finishing import upscale
from generation.finishing.plan import UpscalerRef
from generation.devtools.demo_kit import draw_icon
from generation.engine.devices import resolve_device
torch.set_num_threads({threads})
ref = UpscalerRef("demo", "Demo icons 4x", {file!r}, 4, "", True)
upscale.to_size(draw_icon("blue", "star", size=32), (128, 128), ref, device={device!r})  # load + warm up
image = draw_icon("orange", "heart", size={source})
best, first = None, None
for _ in range({runs}):
    start = time.perf_counter()
    out, record = upscale.to_size(image, ({target}, {target}), ref, device={device!r})
    if resolve_device({device!r}).type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    best = seconds if best is None else min(best, seconds)
    first = first or record  # the first call's memory: later ones stay under the peak it set
    assert out.size == ({target}, {target})
print(json.dumps({{**first, "seconds": best}}))
"""


def run_case(source: int, target: int, args: argparse.Namespace) -> dict:
    code = CHILD.format(
        root=str(ROOT),
        folder=str(ROOT / "upscalers"),
        file=args.file,
        device=args.device,
        threads=args.threads,
        source=source,
        target=target,
        runs=args.runs,
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--file", default="demo-icons-4x.safetensors")
    args = parser.parse_args()
    print(f"{args.file}, device {args.device}, best of {args.runs}")
    print("| input -> output | passes | tile | half | seconds / image | peak memory MB |")
    print("|---|---|---|---|---|---|")
    for source, target in CASES:
        r = run_case(source, target, args)
        print(
            f"| {source} -> {target} | {r['passes']} | {r['tile']} | {r['half']} | {r['seconds']:.2f} | "
            f"{r['peak_memory_mb']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
