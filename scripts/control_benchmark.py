"""What steering costs, on the tiny architecture-true pipelines the tests use (random weights,
CPU): a plain job against the same job from a sketch (img2img) and an inpaint, and the cost of
a family's img2img or inpaint twin (diffusers' from_pipe on the loaded modules: built once per
worker, then taken by every job) against loading the base model.

    .venv/bin/python scripts/control_benchmark.py          # every family with the pipelines
    .venv/bin/python scripts/control_benchmark.py --json

Also a style reference (SDXL's IP-Adapter, FLUX.1's in XLabs' layout; FLUX.2 klein through its
own image input, no add-on) and a canny ControlNet (SDXL, FLUX.1, Qwen-Image, Z-Image) on tiny
add-ons.
Targets (issue 14): a reference, a control image or an inpaint adds at most 30 % to the plain
job; attaching an add-on costs under 5 % of loading the base model. An add-on is read from disk
once per worker ("read once", also printed); "attach" is what each later job pays. The sketch runs `strength`
x steps (0.6 here, "follow closely"), so it is cheaper than the plain job; the inpaint runs every
step and also encodes the image.

A ControlNet runs beside the denoiser every step, so what it adds is about its size against the
denoiser's. The tests' tiny bases have one block, as their ControlNets do, so there a ControlNet
doubles the denoiser, and at 64 px Python's cost per module call outweighs the arithmetic. The
benchmark therefore also measures ControlNet families at 128 px on bases 8x wider (16 heads)
and deepened to a published ControlNet's share ("published proportions": FLUX.1 4 + 4 blocks
against the ControlNet's 1 + 1, 27 %, as InstantX's Union is 28 % of FLUX.1 [dev]; Qwen-Image
12 layers against 1, 9 %, as InstantX's Union is; Z-Image 12 layers against 1 and a refiner,
32 %, near Alibaba's Union 1.0 at 26 %), and sizes published ControlNets from their configs on
the meta device. Cases run in turn within each repeat, so a drift in the VM's speed falls on
all of them alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FAMILIES = ["flux", "sdxl", "zimage", "qwenimage", "flux2", "qwenimageedit"]
SIZE, STEPS, REPEAT = 64, 8, 5
# A base wide enough that its matrix products, not Python's per-module cost, take the time, and
# deep enough that its one-block ControlNet has a published ControlNet's share; drawn at WIDE px.
PUBLISHED_SHAPE: dict[str, dict[str, int]] = {
    "flux": {"layers": 4, "single_layers": 4, "heads": 16},
    "qwenimage": {"layers": 12, "heads": 16},
    "zimage": {"layers": 12, "heads": 16},
}
WIDE = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", action="append", choices=FAMILIES)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="runs per case (the median is printed)")
    args = parser.parse_args()
    globals()["REPEAT"] = args.repeat
    families = args.family or FAMILIES
    rows = [measure(family) for family in families]
    deeper = [measure(family, PUBLISHED_SHAPE[family], WIDE) for family in families if family in PUBLISHED_SHAPE]
    published = published_sizes()
    if args.json:
        print(
            json.dumps(
                {
                    "tiny": rows,
                    "tiny_published_proportions": deeper,
                    "published_controlnet_size_of_denoiser": published,
                },
                indent=2,
            )
        )
        return
    print(f"{SIZE} px, {STEPS} steps, median of {REPEAT}; CPU, tiny random-weight pipelines")
    print_table(rows)
    if deeper:
        print(f"\nThe same at {WIDE} px on wider bases deepened to published ControlNets' proportions:")
        print_table(deeper)
    print("\nControlNet size against the denoiser's (what it adds to each step):")
    for r in rows + deeper:
        if "control_size_of_denoiser" in r:
            print(f"  tiny {r['family']}{r['shape']}: {r['control_size_of_denoiser']:.0%}")
    for name, share in published.items():
        print(f"  published {name}: {share:.0%}")


def print_table(rows: list[dict[str, Any]]) -> None:
    jobs, twins = ["sketch", "inpaint", "reference", "control"], ["img2img", "inpaint", "reference", "control"]
    add_ons = ["img2img", "inpaint", "reference", "control"]
    columns = [
        "family",
        "load s",
        "plain s",
        *(f"{j} s (+%)" for j in jobs),
        *(f"attach {t} ms (% of load)" for t in twins),
        *(f"read or build {a} once ms (% of load)" for a in add_ons),
    ]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        cells = [r["family"] + r["shape"], str(r["load_s"]), str(r["plain_s"]), *(_cell(r, j) for j in jobs)]
        reads = [_attach(r, a, "read") for a in add_ons]
        print("| " + " | ".join([*cells, *(_attach(r, t) for t in twins), *reads]) + " |")


def _cell(row: dict[str, Any], key: str) -> str:
    if row.get(f"{key}_s") is None:
        return "–"
    return f"{row[f'{key}_s']} ({row[f'{key}_over_plain']:+.0%})"


def _attach(row: dict[str, Any], key: str, what: str = "attach") -> str:
    if row.get(f"{what}_{key}_ms") is None:
        return "–"
    return f"{row[f'{what}_{key}_ms']} ({row[f'{what}_{key}_of_load']:.1%})"


def measure(family: str, shape: dict[str, int] | None = None, size: int = SIZE) -> dict[str, Any]:
    from PIL import Image

    from generation.devtools import tiny
    from generation.engine import engine_class
    from generation.engine.types import GenerationRequest

    scratch = Path(tempfile.mkdtemp(prefix=f"control-{family}-"))
    folder = tiny.TINY_BUILDERS[family](scratch / family, **(shape or {}))
    started = time.perf_counter()
    engine = engine_class(family)(folder, device="cpu")
    label = " (" + ", ".join(f"{k} {v}" for k, v in shape.items()) + f", {size} px)" if shape else ""
    row: dict[str, Any] = {"family": family, "shape": label, "load_s": round(time.perf_counter() - started, 3)}
    plain = GenerationRequest(
        prompt="a star", negative_prompt="", width=size, height=size, steps=STEPS, guidance_scale=3.5, seeds=[1]
    )
    picture = Image.new("RGB", (size, size), "white")
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    cases = {"plain": plain}
    for name, twin, request in (
        ("img2img", "img2img_pipe", GenerationRequest(**{**plain.__dict__, "init_image": picture, "strength": 0.6})),
        ("inpaint", "inpaint_pipe", GenerationRequest(**{**plain.__dict__, "init_image": picture, "mask_image": mask})),
    ):
        can = engine.supports_img2img if name == "img2img" else engine.inpaint_class is not None
        if not can:
            continue
        for what in ("read", "attach"):  # built by from_pipe once per worker; later jobs take it
            started = time.perf_counter()
            getattr(engine, twin)
            took = time.perf_counter() - started
            row[f"{what}_{name}_ms"] = round(took * 1000, 3)
            row[f"{what}_{name}_of_load"] = round(took / row["load_s"], 6)
        cases["sketch" if name == "img2img" else "inpaint"] = request
    cases |= add_on_cases(engine, family, folder, plain, row, size)
    runs = {
        name: partial(engine.generate, request, max_batch=1, on_step=lambda *_: None, on_images=lambda *_: None)
        for name, request in cases.items()
    }
    for run in runs.values():
        run()  # warm
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(REPEAT):  # in turn, so the VM's drift in speed falls on every case alike
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    for name in runs:
        row[f"{name}_s"] = round(statistics.median(times[name]), 4)
    for name in ("sketch", "inpaint", "reference", "control"):
        if f"{name}_s" in row:
            row[f"{name}_over_plain"] = round(row[f"{name}_s"] / row["plain_s"] - 1, 3)
    return row


def add_on_cases(engine: Any, family: str, folder: Path, plain: Any, row: dict[str, Any], size: int) -> dict[str, Any]:
    """A style reference and a canny ControlNet where the family takes them, each on a tiny
    add-on; attaching is timed after the worker has read it once (what every later job pays)."""
    from PIL import Image

    from generation.control.sketch import canny_edges
    from generation.devtools import tiny
    from generation.engine.types import ControlNetSpec, GenerationRequest, IPAdapterSpec

    cases: dict[str, Any] = {}
    square = Image.new("RGB", (size, size), "white")
    square.paste((0, 0, 0), (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    if engine.reference_argument:  # the pipeline's own image input: nothing to attach
        cases["reference"] = GenerationRequest(**{**plain.__dict__, "references": [square]})
    elif engine.supports_ip_adapter:
        build = tiny.build_tiny_ip_adapter if family == "sdxl" else tiny.build_tiny_flux_ip_adapter
        denoiser = folder / ("unet" if family == "sdxl" else "transformer")
        spec = IPAdapterSpec(build(folder.parent / "ip", denoiser), tiny.IP_ADAPTER_WEIGHTS)
        started = time.perf_counter()
        engine._use_ip_adapter(spec)  # read from disk: once per worker
        row["read_reference_ms"] = round((time.perf_counter() - started) * 1000, 1)
        row["read_reference_of_load"] = round(row["read_reference_ms"] / 1000 / row["load_s"], 4)
        engine._use_ip_adapter(None)
        started = time.perf_counter()
        engine._use_ip_adapter(spec)
        row["attach_reference_ms"] = round((time.perf_counter() - started) * 1000, 1)
        row["attach_reference_of_load"] = round(row["attach_reference_ms"] / 1000 / row["load_s"], 4)
        engine._use_ip_adapter(None)
        cases["reference"] = GenerationRequest(**{**plain.__dict__, "references": [square], "ip_adapter": spec})
    if engine.controlnet_pipeline_class is not None:
        spec = ControlNetSpec(tiny.build_tiny_controlnet(folder.parent / "controlnet", folder, family))
        started = time.perf_counter()
        engine._control_pipe(spec)  # read from disk and built: once per worker
        row["read_control_ms"] = round((time.perf_counter() - started) * 1000, 1)
        row["read_control_of_load"] = round(row["read_control_ms"] / 1000 / row["load_s"], 4)
        # What the ControlNet adds to each step is about its size against the denoiser's.
        control = engine._control_pipe(spec).controlnet
        row["control_size_of_denoiser"] = round(_params(control) / _params(engine._denoiser()), 3)
        started = time.perf_counter()
        engine._control_pipe(spec)  # every later job: the kept pipeline, nothing read or moved
        row["attach_control_ms"] = round((time.perf_counter() - started) * 1000, 3)
        row["attach_control_of_load"] = round(row["attach_control_ms"] / 1000 / row["load_s"], 6)
        edges = canny_edges(square)
        cases["control"] = GenerationRequest(**{**plain.__dict__, "control_image": edges, "controlnet": spec})
    return cases


def _params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def published_sizes() -> dict[str, float]:
    """Published ControlNets' sizes against their denoisers', from their configs on the meta
    device (no weights: nothing is read or downloaded). Per step a ControlNet costs about its
    share of the denoiser's parameters, since both see the same tokens."""
    from accelerate import init_empty_weights
    from diffusers import ControlNetModel, FluxControlNetModel, FluxTransformer2DModel, UNet2DConditionModel

    flux = {
        "patch_size": 1,
        "in_channels": 64,
        "attention_head_dim": 128,
        "num_attention_heads": 24,
        "joint_attention_dim": 4096,
        "pooled_projection_dim": 768,
        "guidance_embeds": True,
        "axes_dims_rope": [16, 56, 56],
    }
    sizes = {}
    with init_empty_weights():
        denoiser = _params(FluxTransformer2DModel(num_layers=19, num_single_layers=38, **flux))
        for name, double, single, modes in (
            ("FLUX.1: InstantX Union (5 double + 10 single blocks)", 5, 10, 10),
            ("FLUX.1: Shakker-Labs Union Pro 2.0 (6 double blocks)", 6, 0, None),
            ("FLUX.1: 2 double blocks (XLabs' layout)", 2, 0, None),
        ):
            net = FluxControlNetModel(num_layers=double, num_single_layers=single, num_mode=modes, **flux)
            sizes[name] = round(_params(net) / denoiser, 3)
        unet = UNet2DConditionModel(
            sample_size=128,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(320, 640, 1280),
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),
            cross_attention_dim=2048,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
        )
        sizes["SDXL: a full ControlNet (ControlNetModel.from_unet)"] = round(
            _params(ControlNetModel.from_unet(unet)) / _params(unet), 3
        )
        sizes |= _published_qwen_and_zimage()
    return sizes


def _published_qwen_and_zimage() -> dict[str, float]:
    """Qwen-Image's and Z-Image's published ControlNets; both models' defaults in diffusers are
    the published configs. Z-Image's Union 2.x has 15 control layers (diffusers' single-file
    loader tells it by `control_layers.14`), 1.0 six, one every fifth layer."""
    from diffusers import (
        QwenImageControlNetModel,
        QwenImageTransformer2DModel,
        ZImageControlNetModel,
        ZImageTransformer2DModel,
    )

    sizes = {}
    qwen = _params(QwenImageTransformer2DModel())
    instantx = _params(QwenImageControlNetModel(num_layers=5))
    sizes["Qwen-Image: InstantX Union (5 of 60 layers)"] = round(instantx / qwen, 3)
    zimage = _params(ZImageTransformer2DModel())
    for name, places in (
        ("Z-Image: Alibaba Union 1.0 (6 of 30 layers, 2 refiner)", list(range(0, 30, 5))),
        ("Z-Image: Alibaba Union 2.x (15 of 30 layers, 2 refiner)", list(range(0, 30, 2))),
    ):
        net = ZImageControlNetModel(
            control_layers_places=places,
            control_refiner_layers_places=[0, 1],
            control_in_dim=16,
            add_control_noise_refiner="control_noise_refiner",
        )
        sizes[name] = round(_params(net) / zimage, 3)
    return sizes


if __name__ == "__main__":
    main()
