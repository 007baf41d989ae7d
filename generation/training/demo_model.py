"""Train the offline default model from scratch on the demo brand kit, on CPU.

A FLUX.1-architecture pipeline, small enough for a laptop: a 3-block VAE (64 px images to
16x16x4 latents), a 2+4-block FLUX transformer (about 2.4 M parameters) and frozen, randomly
initialised tiny CLIP and T5 encoders (random but fixed embeddings still tell captions apart).
It draws at 64 px (`native_size`); the finishing size stage brings its renders to the size asked.

Stage 1 fits the VAE (reconstruction), stage 2 fits the transformer with the studio's flow
objective on latents of the kit, captioned plainly and through each asset type's template.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from transformers import CLIPTextModel

from ..engine.tiny import clip_config, clip_tokenizer, t5_encoder, t5_tokenizer
from .demo_kit import demo_kit
from .flow import encode_images
from .objectives import FluxObjective

log = logging.getLogger(__name__)

SIZE = 64
WIDTH = 64  # text width = joint attention and pooled projection width
MAX_SEQUENCE_LENGTH = 32
SHIFT = 3.0
# What the studio needs in the model's registry entry to run it as trained.
MODEL_OPTIONS = {"native_size": SIZE, "max_sequence_length": MAX_SEQUENCE_LENGTH}


@dataclass
class Plan:
    vae_steps: int = 800
    transformer_steps: int = 3000
    batch: int = 32
    per_pair: int = 50
    seed: int = 0


Report = Callable[[str, int, int, float], None]  # stage, step, total, loss


def train_demo_model(
    folder: Path, *, templates: list[str], plan: Plan | None = None, report: Report | None = None
) -> Path:
    plan = plan or Plan()
    report = report or _log_report
    torch.manual_seed(plan.seed)
    kit = demo_kit(plan.per_pair, size=SIZE, seed=plan.seed)
    pixels = torch.stack([_to_tensor(item.image) for item in kit])
    vae = _train_vae(pixels, plan, report)
    latents = encode_images(vae, pixels)
    with tempfile.TemporaryDirectory() as scratch:
        pipe = FluxPipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(shift=SHIFT, use_dynamic_shifting=False),
            vae=vae,
            text_encoder=CLIPTextModel(clip_config(WIDTH)),
            tokenizer=clip_tokenizer(Path(scratch)),
            text_encoder_2=t5_encoder(WIDTH),
            tokenizer_2=t5_tokenizer(),
            transformer=_transformer(),
        )
        captions = _caption_variants([item.caption for item in kit], templates)
        _train_transformer(pipe, latents, captions, plan, report)
        folder.mkdir(parents=True, exist_ok=True)
        pipe.save_pretrained(folder)
    return folder


def _transformer() -> FluxTransformer2DModel:
    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=2,
        num_single_layers=4,
        attention_head_dim=32,
        num_attention_heads=4,
        joint_attention_dim=WIDTH,
        pooled_projection_dim=WIDTH,
        axes_dims_rope=[8, 12, 12],
        guidance_embeds=False,
    )


def _vae() -> AutoencoderKL:
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=SIZE,
    )


def _to_tensor(image: object) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


def _train_vae(pixels: torch.Tensor, plan: Plan, report: Report) -> AutoencoderKL:
    vae = _vae()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, plan.vae_steps)
    generator = torch.Generator().manual_seed(plan.seed)
    vae.train()
    for step in range(1, plan.vae_steps + 1):
        batch = pixels[torch.randint(len(pixels), (plan.batch,), generator=generator)]
        posterior = vae.encode(batch).latent_dist
        reconstruction = vae.decode(posterior.sample(generator=generator)).sample
        loss = F.mse_loss(reconstruction, batch) + 1e-6 * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        report("vae", step, plan.vae_steps, loss.item())
    vae.eval()
    # The pipeline normalises latents with these, as the real FLUX VAE's config does.
    with torch.no_grad():
        latents = torch.cat([vae.encode(pixels[i : i + 64]).latent_dist.mode() for i in range(0, len(pixels), 64)])
    vae.register_to_config(shift_factor=float(latents.mean()), scaling_factor=float(1 / latents.std()))
    return vae


def _caption_variants(captions: list[str], templates: list[str]) -> list[list[str]]:
    """Each image's caption as typed and as each asset type expands it, so the studio's
    expanded prompts (which the model sees truncated to its token limit) mean the same thing."""
    expansions = [" ".join(t.split()) for t in templates if "{subject}" in t]
    return [[text] + [t.replace("{subject}", text) for t in expansions] for text in captions]


def _train_transformer(
    pipe: FluxPipeline, latents: torch.Tensor, captions: list[list[str]], plan: Plan, report: Report
) -> None:
    variants = sorted({text for options in captions for text in options})
    index = {text: i for i, text in enumerate(variants)}
    # The same FLUX objective a LoRA run uses (its noise-level shift, 3, is this scheduler's too).
    objective = FluxObjective(pipe, max_sequence_length=MAX_SEQUENCE_LENGTH)
    embeddings = objective.embed(variants)
    transformer = pipe.transformer
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=1e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=plan.transformer_steps)
    generator = torch.Generator().manual_seed(plan.seed + 1)
    chooser = random.Random(plan.seed)
    transformer.train()
    for step in range(1, plan.transformer_steps + 1):
        rows = torch.randint(len(latents), (plan.batch,), generator=generator).tolist()
        picks = torch.tensor([index[chooser.choice(captions[row])] for row in rows])
        loss = objective.loss(latents[rows], embeddings, picks, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        report("transformer", step, plan.transformer_steps, loss.item())
    transformer.eval()


_last = {"at": 0.0}


def _log_report(stage: str, step: int, total: int, loss: float) -> None:
    now = time.monotonic()
    if step == total or now - _last["at"] > 10:
        _last["at"] = now
        log.info("%s step %d/%d loss %.4f", stage, step, total, loss)
