"""The FLUX.2 [klein] and Z-Image training objectives on their tiny pipelines: a LoRA learns from
them, and they train the transformer on what the pipeline's own sampler shows it and steps along."""

import inspect
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline
from peft import LoraConfig

from generation.devtools.demo_kit import PALETTE, draw_icon
from generation.devtools.tiny import TINY_BUILDERS
from generation.training.objectives import OBJECTIVES, Objective

FAMILIES = ["flux2", "zimage"]
CAPTION = "a flat blue circle icon"
SIGMA = 0.7  # away from 0.5, where mixing the image and the noise the wrong way round goes unseen


def tiny_objective(family: str, folder: Path) -> Objective:
    cls = OBJECTIVES[family]
    pipe = cls.pipeline_class.from_pretrained(TINY_BUILDERS[family](folder / family))
    pipe.set_progress_bar_config(disable=True)
    return cls(pipe, max_sequence_length=32)


def icon_pixels() -> torch.Tensor:
    array = np.asarray(draw_icon(next(iter(PALETTE)), "circle", size=64), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_lora_on_attention_and_feed_forward_lowers_the_loss_on_one_image(family, tmp_path) -> None:
    objective = tiny_objective(family, tmp_path)
    network = objective.model
    network.requires_grad_(False)
    network.add_adapter(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=objective.lora_targets)
    )
    adapted = {name.rsplit(".lora_A", 1)[0].split(".")[-1] for name, _ in network.named_modules() if "lora_A" in name}
    feed_forward = {"flux2": {"linear_in", "to_qkv_mlp_proj", "to_out"}, "zimage": {"w1", "w2", "w3"}}[family]
    assert {"to_q", "to_k", "to_v"} | feed_forward <= adapted
    latents = objective.latents(icon_pixels()).expand(4, -1, -1, -1)
    cond = objective.embed([CAPTION])
    rows = torch.zeros(4, dtype=torch.long)

    def held_out_loss() -> float:  # the same noise and noise levels each time
        with torch.no_grad():
            return float(objective.loss(latents, cond, rows, torch.Generator().manual_seed(0)))

    before = held_out_loss()
    params = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    for _ in range(60):
        loss = objective.loss(latents, cond, rows, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert held_out_loss() < 0.85 * before  # the tiny klein's one block pair learns slowest


def pipeline_start(family: str, kwargs: dict[str, Any], target: torch.Tensor) -> tuple[torch.Tensor, dict, Any]:
    """The pipeline's initial latents for the loss's noisy input, its call's conditioning, and
    the transformer's output that is the loss's target."""
    if family == "flux2":
        start = Flux2KleinPipeline._unpack_latents_with_ids(kwargs["hidden_states"], kwargs["img_ids"])
        return start, {"prompt_embeds": kwargs["encoder_hidden_states"]}, target
    start = torch.stack(kwargs["x"]).squeeze(2)
    return start, {"prompt_embeds": kwargs["cap_feats"], "guidance_scale": 0.0}, list(target.unsqueeze(2).unbind(0))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=1e-6)
    return a == b


@pytest.mark.parametrize("family", FAMILIES)
def test_the_pipeline_steps_the_losss_noisy_input_to_the_clean_image_along_the_losss_target(
    family, tmp_path, monkeypatch
) -> None:
    """One sampling step from the loss's noisy latents to sigma 0, the transformer answering with
    the loss's target: the pipeline must show the transformer exactly the loss's inputs (the
    timestep on its scale) and land on the training image (so the target's sign and the latents'
    normalisation are the pipeline's)."""
    objective = tiny_objective(family, tmp_path)
    pipe = objective.pipe
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config, shift=1.0)  # SIGMA as is
    if family == "flux2":  # the tiny VAE's batch-norm statistics are the identity's: give it some
        channels = pipe.vae.bn.running_mean.numel()
        pipe.vae.bn.running_mean.copy_(torch.linspace(-0.5, 0.5, channels))
        pipe.vae.bn.running_var.copy_(torch.linspace(0.5, 2.0, channels))
    monkeypatch.setattr(
        sys.modules[type(objective).__module__], "sample_sigmas", lambda n, **_: torch.full((n,), SIGMA)
    )
    pixels = icon_pixels()
    cond = objective.embed([CAPTION])
    kwargs, target = objective.inputs(objective.latents(pixels), cond, torch.tensor([0]), torch.Generator())
    start, conditioning, output = pipeline_start(family, kwargs, target)
    signature = inspect.signature(objective.model.forward)
    calls: list[dict[str, Any]] = []

    def answer(*args: Any, **given: Any) -> tuple[Any]:
        calls.append(signature.bind(*args, **given).arguments)
        return (output,)

    monkeypatch.setattr(objective.model, "forward", answer)
    image = pipe(
        latents=start, sigmas=[SIGMA], num_inference_steps=1, height=64, width=64, output_type="pt", **conditioning
    ).images
    [shown] = calls
    assert all(same(value, shown[name]) for name, value in kwargs.items()), "the loss feeds what the pipeline does not"
    with torch.no_grad():
        clean = pipe.vae.decode(pipe.vae.encode(pixels).latent_dist.mode()).sample
    expected = pipe.image_processor.postprocess(clean, output_type="pt")
    assert torch.allclose(image, expected, atol=1e-4)
