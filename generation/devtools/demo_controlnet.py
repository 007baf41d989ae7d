"""A canny ControlNet for the demo brand model, trained here on the glyph kit, so the embedded
studio can follow a sketch's edges (not only start from it by img2img).

Each kit glyph is the target; what the ControlNet sees is the canny edges of a sketch of it:
its outlines drawn as a pen stroke on white paper (what a designer draws or photographs), or
the glyph itself. Both are made at the demo model's render size, as the engine finds a sketch's
edges at the size the model draws (`DiffusersEngine._call`), so a sketch means the same at any
job size. The ControlNet is FLUX.1's, made from the demo transformer (diffusers'
`FluxControlNetModel.from_transformer`: its embedders copied, zero-initialised outputs) and
trained with the flow objective against the frozen transformer, as diffusers' ControlNet
trainer does. Captions are dropped a share of the time, so a sketch steers even a description
naming no subject the model knows.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import FluxControlNetModel, FluxPipeline
from PIL import Image

from ..engine.edges import canny_edges
from ..training.flow import encode_images, sample_sigmas
from ..training.objectives import FluxObjective
from .demo_kit import foreground, glyph_kit, read_kit_card
from .demo_model import (
    MAX_SEQUENCE_LENGTH,
    SIZE,
    Progress,
    Report,
    _caption_variants,
    _log_report,
    _to_tensor,
    one_cycle,
)

log = logging.getLogger(__name__)

SKETCH_SIDE = 256  # the glyph's outlines are drawn at this size, then shrunk to the render size


@dataclass
class ControlPlan:
    steps: int = 2000
    batch: int = 16
    per_pair: int = 3  # jittered renders of each subject in each colour
    double_blocks: int = 1  # of the demo transformer's 2 double and 4 single blocks
    single_blocks: int = 2
    learning_rate: float = 1e-3
    caption_dropout: float = 0.3
    seed: int = 0
    checkpoint_every: int = 250


def train_demo_controlnet(
    model_folder: Path,
    out: Path,
    *,
    templates: list[str],
    plan: ControlPlan | None = None,
    report: Report | None = None,
    checkpoints: Path | None = None,
) -> Path:
    """Train a canny ControlNet for the demo model in `model_folder` and save it to `out` (a
    diffusers ControlNet folder). With `checkpoints`, a run started again resumes."""
    plan = plan or ControlPlan()
    report = report or _log_report
    torch.manual_seed(plan.seed)
    card = read_kit_card(model_folder)
    if card is None:
        raise ValueError(f"{model_folder} has no demo-kit.json: it is not the demo brand model")
    pipe = FluxPipeline.from_pretrained(model_folder)
    kit = glyph_kit(list(card["subjects"]), plan.per_pair, size=SKETCH_SIDE, seed=plan.seed)
    rng = random.Random(plan.seed)
    targets = [item.image.resize((SIZE, SIZE), Image.Resampling.LANCZOS) for item in kit]
    controls = [control_image(item.image, rng) for item in kit]
    with torch.no_grad():
        latents = encode_images(pipe.vae, torch.stack([_to_tensor(image) for image in targets]))
        hints = encode_images(pipe.vae, torch.stack([_to_tensor(image) for image in controls]))
    captions = _caption_variants([item.caption for item in kit], templates)
    controlnet = _train(pipe, latents, hints, captions, plan, report, checkpoints)
    out.mkdir(parents=True, exist_ok=True)
    # Half precision on disk (the engine loads it in the base model's dtype): it ships in the repository.
    controlnet.to(torch.float16).save_pretrained(out)
    return out


def control_image(glyph: Image.Image, rng: random.Random) -> Image.Image:
    """What the ControlNet learns from, for one glyph render: the canny edges, at the render size,
    of its outlines drawn with a pen of random width on white (two times in three), or of the
    glyph as it is."""
    import cv2

    if rng.random() < 1 / 3:
        return canny_edges(glyph.resize((SIZE, SIZE), Image.Resampling.LANCZOS))
    ink = foreground(glyph).astype(np.uint8)
    contours, _ = cv2.findContours(ink, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    paper = np.full(ink.shape, 255, np.uint8)
    cv2.drawContours(paper, contours, -1, 0, thickness=rng.randint(2, 7))
    sketch = Image.fromarray(paper).convert("RGB").resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    return canny_edges(sketch)


def _train(
    pipe: FluxPipeline,
    latents: torch.Tensor,
    hints: torch.Tensor,
    captions: list[list[str]],
    plan: ControlPlan,
    report: Report,
    checkpoints: Path | None,
) -> FluxControlNetModel:
    transformer = pipe.transformer
    transformer.requires_grad_(False)
    controlnet = FluxControlNetModel.from_transformer(
        transformer,
        num_layers=plan.double_blocks,
        num_single_layers=plan.single_blocks,
        attention_head_dim=transformer.config.attention_head_dim,
        num_attention_heads=transformer.config.num_attention_heads,
    )
    variants = sorted({text for options in captions for text in options} | {""})
    index = {text: i for i, text in enumerate(variants)}
    embeddings = FluxObjective(pipe, max_sequence_length=MAX_SEQUENCE_LENGTH).embed(variants)
    optimizer = torch.optim.AdamW(controlnet.parameters(), lr=plan.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(one_cycle, total=plan.steps))
    generator = torch.Generator().manual_seed(plan.seed + 2)
    chooser = random.Random(plan.seed)
    progress = Progress(checkpoints, controlnet, optimizer, schedule, generator, chooser)
    controlnet.train()
    for step in range(progress.resume() + 1, plan.steps + 1):
        rows = torch.randint(len(latents), (plan.batch,), generator=generator).tolist()
        texts = ["" if chooser.random() < plan.caption_dropout else chooser.choice(captions[row]) for row in rows]
        picks = torch.tensor([index[text] for text in texts])
        loss = control_loss(
            transformer,
            controlnet,
            latents[rows],
            hints[rows],
            embeddings.hidden[picks],
            embeddings.pooled[picks],
            embeddings.extra,
            generator,
        )
        progress.step(step, plan.steps, loss, stage="controlnet", report=report, every=plan.checkpoint_every)
    controlnet.eval()
    return controlnet


def control_loss(
    transformer: torch.nn.Module,
    controlnet: FluxControlNetModel,
    latents: torch.Tensor,
    hints: torch.Tensor,
    hidden: torch.Tensor,
    pooled: torch.Tensor,
    text_ids: torch.Tensor | None,
    generator: torch.Generator,
    shift: float = 3.0,
) -> torch.Tensor:
    """The flow objective's velocity error with the ControlNet's residuals added to the frozen
    transformer's blocks, as FluxControlNetPipeline runs them (the hint VAE-encoded and packed)."""
    n, c, h, w = latents.shape
    noise = torch.randn(latents.shape, generator=generator)
    sigmas = sample_sigmas(n, shift=shift, generator=generator).view(n, 1, 1, 1)
    packed = FluxPipeline._pack_latents((1 - sigmas) * latents + sigmas * noise, n, c, h, w)
    image_ids = FluxPipeline._prepare_latent_image_ids(n, h // 2, w // 2, latents.device, latents.dtype)
    common = {
        "timestep": sigmas.view(n),
        "guidance": None,
        "pooled_projections": pooled,
        "encoder_hidden_states": hidden,
        "txt_ids": text_ids,
        "img_ids": image_ids,
        "return_dict": False,
    }
    blocks, single = controlnet(
        hidden_states=packed, controlnet_cond=FluxPipeline._pack_latents(hints, n, c, h, w), **common
    )
    prediction = transformer(
        hidden_states=packed, controlnet_block_samples=blocks, controlnet_single_block_samples=single, **common
    )[0]
    target = FluxPipeline._pack_latents(noise - latents, n, c, h, w)
    return F.mse_loss(prediction.float(), target.float())
