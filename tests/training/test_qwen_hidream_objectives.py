"""The Qwen-Image and HiDream-I1 training objectives on their tiny pipelines: they learn, and they
noise and aim as the pipelines' schedulers denoise (latent layout, timestep scale, target sign)."""

from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, QwenImagePipeline

from generation.devtools.tiny import TINY_BUILDERS
from generation.training.objectives import OBJECTIVES, Objective

FAMILIES = ["qwenimage", "hidream"]


@pytest.fixture(scope="module", params=FAMILIES)
def objective(request, tmp_path_factory) -> Objective:
    family = request.param
    folder = TINY_BUILDERS[family](tmp_path_factory.mktemp(family) / f"tiny-{family}")
    cls = OBJECTIVES[family]
    pipe = cls.pipeline_class.from_pretrained(folder, local_files_only=True)
    return cls(pipe, max_sequence_length=cls.default_sequence_length)


def image_latents(objective: Objective, side: int = 64) -> torch.Tensor:
    """One fixed picture (a bright square on dark), as the trainer's latents."""
    pixels = -torch.ones(1, 3, side, side)
    pixels[:, :, side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = 0.8
    return objective.latents(pixels)


def as_pipeline_step(objective: Objective, kwargs: dict[str, Any], target: torch.Tensor) -> tuple:
    """What the pipeline's __call__ would hand its scheduler had the transformer given `target`:
    (the scheduler's timestep t, the velocity, the latents being denoised) in the pipeline's layout."""
    if objective.family == "qwenimage":  # passes t / 1000, steps on its output as is
        return kwargs["timestep"] * 1000, target, kwargs["hidden_states"]
    return kwargs["timesteps"], -target, kwargs["hidden_states"]  # HiDream: passes t, negates its output


def clean_in_pipeline_layout(objective: Objective, latents: torch.Tensor) -> torch.Tensor:
    if objective.family == "qwenimage":
        n, c, _, h, w = latents.shape
        return QwenImagePipeline._pack_latents(latents, n, c, h, w)
    return latents


def test_the_noisy_input_and_target_step_back_to_the_clean_latents_through_the_pipelines_scheduler(
    objective,
) -> None:
    """One Euler step of the pipeline's scheduler from the noisy input, at the timestep the
    transformer was told, with the target as its prediction, lands on the clean latents: the
    noise mix, the timestep scale and the target's sign are the pipeline's own."""
    latents = image_latents(objective)
    cond = objective.embed(["", "a bright square"])
    for seed in range(3):
        kwargs, target = objective.inputs(latents, cond, torch.tensor([1]), torch.Generator().manual_seed(seed))
        t, velocity, noisy = as_pipeline_step(objective, kwargs, target)
        # The pipeline's scheduler, unshifted, so it keeps exactly the sigma the timestep names.
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(
            objective.pipe.scheduler.config, shift=1.0, use_dynamic_shifting=False
        )
        scheduler.set_timesteps(sigmas=[float(t[0]) / scheduler.config.num_train_timesteps])
        assert torch.allclose(scheduler.timesteps[0], t[0].float())
        stepped = scheduler.step(velocity, scheduler.timesteps[0], noisy, return_dict=False)[0]
        assert torch.allclose(stepped, clean_in_pipeline_layout(objective, latents), atol=1e-4)
        assert not torch.allclose(noisy, clean_in_pipeline_layout(objective, latents), atol=1e-2)


def test_the_loss_goes_down_on_one_fixed_image_as_a_lora_trains(objective) -> None:
    from peft import LoraConfig

    network = objective.model
    network.requires_grad_(False)
    network.add_adapter(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=objective.lora_targets)
    )
    one = image_latents(objective)
    latents = one.expand(4, *one.shape[1:])
    cond = objective.embed(["", "a bright square"])
    rows = torch.ones(4, dtype=torch.long)

    def held_out_loss() -> float:  # the same noise and noise levels each time
        with torch.no_grad():
            return float(objective.loss(latents, cond, rows, torch.Generator().manual_seed(99)))

    network.train()
    before = held_out_loss()
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=5e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        loss = objective.loss(latents, cond, rows, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = held_out_loss()
    network.delete_adapters("default")
    # The noise's own variance (1) stays: a tiny transformer cannot tell the noise from the image
    # in a few steps. What is above it (not knowing the image) must mostly go.
    assert after - 1 < 0.5 * (before - 1), (before, after)


def test_qwen_image_latents_are_normalised_per_channel_as_its_pipeline_undoes_it(tmp_path: Path) -> None:
    cls = OBJECTIVES["qwenimage"]
    pipe = cls.pipeline_class.from_pretrained(TINY_BUILDERS["qwenimage"](tmp_path / "q"), local_files_only=True)
    pipe.vae.register_to_config(latents_mean=[0.5, -0.25, 1.0, 0.0], latents_std=[2.0, 0.5, 1.5, 3.0])
    objective = cls(pipe, max_sequence_length=64)
    pixels = torch.rand(1, 3, 64, 64) * 2 - 1
    latents = objective.latents(pixels)
    # As QwenImagePipeline.__call__ turns latents back before decoding them.
    config = pipe.vae.config
    mean = torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1)
    std = 1.0 / torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1)
    raw = pipe.vae.encode(pixels[:, :, None]).latent_dist.mode()
    assert latents.shape == raw.shape and latents.shape[2] == 1  # one frame of the video VAE
    assert torch.allclose(latents / std + mean, raw, atol=1e-5)


def test_qwen_image_noise_levels_follow_the_shift_its_pipeline_samples_with_at_that_size(tmp_path: Path) -> None:
    cls = OBJECTIVES["qwenimage"]
    pipe = cls.pipeline_class.from_pretrained(TINY_BUILDERS["qwenimage"](tmp_path / "q"), local_files_only=True)
    # As Qwen-Image's published scheduler: exponential dynamic shifting, set by the image's size.
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
        pipe.scheduler.config, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9, max_image_seq_len=8192
    )
    objective = cls(pipe, max_sequence_length=64)
    steps, side = 4, 128
    pipe("a bright square", width=side, height=side, num_inference_steps=steps, output_type="latent")
    unshifted = torch.linspace(1.0, 1 / steps, steps)  # what __call__ hands the scheduler
    shift = objective.shift((side // 16) ** 2)  # 8 px per latent, 2x2 latents per token
    assert shift > 1.0
    expected = shift * unshifted / (1 + (shift - 1) * unshifted)
    assert torch.allclose(pipe.scheduler.sigmas[:steps], expected, atol=1e-5)


@pytest.mark.parametrize("objective", ["hidream"], indirect=True)
def test_hidreams_training_mode_output_reads_as_the_latents_its_pipeline_gets(objective) -> None:
    """In training mode HiDream's transformer lays its output out per patch (and pads a
    non-square size); once read back it is the eval-mode (pipeline) output, square or not."""
    cond = objective.embed(["a bright square"])
    network = objective.model
    for h, w in ((8, 8), (8, 12)):
        latents = torch.randn(1, 4, h, w, generator=torch.Generator().manual_seed(h * w))
        kwargs, _ = objective.inputs(latents, cond, torch.tensor([0]), torch.Generator().manual_seed(1))
        with torch.no_grad():
            network.train()
            trained = objective.as_latents(network(**kwargs, return_dict=False)[0], latents.shape[-2:])
            network.eval()
            inferred = objective.as_latents(network(**kwargs, return_dict=False)[0], latents.shape[-2:])
        assert trained.shape == latents.shape and torch.allclose(trained, inferred, atol=1e-5)


@pytest.mark.parametrize("objective", ["hidream"], indirect=True)
def test_hidreams_lora_goes_on_the_image_attention_and_leaves_the_experts_alone(objective) -> None:
    from peft import LoraConfig

    network = objective.model
    network.add_adapter(LoraConfig(r=2, target_modules=objective.lora_targets), adapter_name="probe")
    adapted = {name.rsplit(".lora_", 1)[0] for name, _ in network.named_parameters() if ".lora_" in name}
    network.delete_adapters("probe")
    assert {name.rsplit(".", 1)[1] for name in adapted} == {"to_q", "to_k", "to_v", "to_out"}
    assert not any("experts" in name or "gate" in name for name in adapted)
