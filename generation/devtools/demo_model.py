"""Train the offline default model from scratch on the demo brand kit (Fluent filled glyphs), on CPU.

A FLUX.1-architecture pipeline, small enough for a laptop: a 3-block VAE (64 px images to
16x16x4 latents), a 2+4-block FLUX transformer (192 wide, about 5 M parameters) and frozen,
randomly initialised tiny CLIP and T5 encoders (random but fixed embeddings still tell captions
apart; the T5 vocabulary has each subject word as one token). It draws at 64 px (`native_size`);
the finishing size stage brings its renders to the size asked.

Stage 1 fits the VAE to the kit (reconstruction), then refits its decoder alone to every glyph
in both Fluent styles (so a LoRA can teach outlines whose colours the decoder renders true);
stage 2 fits the transformer with the studio's flow objective on latents of the kit, captioned
plainly and through each asset type's template.
With a checkpoints folder the run survives a kill: started again, it resumes.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from safetensors.torch import save_file
from transformers import CLIPTextModel

from ..training.flow import encode_images
from ..training.objectives import FluxObjective
from . import glyphs
from .demo_kit import GLYPH_SUBJECTS, KIT_CARD, PALETTE, REFERENCE_SIDE, glyph_kit, glyph_references
from .tiny import clip_config, clip_tokenizer, t5_encoder, t5_tokenizer

log = logging.getLogger(__name__)

SIZE = 64
WIDTH = 64  # text width = joint attention and pooled projection width
MAX_SEQUENCE_LENGTH = 32
SHIFT = 3.0
# True CFG against the asset type's negative prompt, though the model never saw an empty or a
# negative caption: it sharpens what the prompt names, colour and palette compliance as without,
# for twice the steps' cost. Stronger draws more subjects right but loses colour. Figures:
# scripts/demo_model_quality.py, in docs/benchmarks.md.
TRUE_CFG = 1.25
# What the studio needs in the model's registry entry to run it as trained.
MODEL_OPTIONS = {"native_size": SIZE, "max_sequence_length": MAX_SEQUENCE_LENGTH, "true_cfg_scale": TRUE_CFG}


@dataclass
class Plan:
    subjects: int = 48  # the first this many of demo_kit.GLYPH_SUBJECTS
    vae_steps: int = 600
    decoder_steps: int = 300  # the decoder refit on filled and regular glyphs of every subject
    transformer_steps: int = 10000
    batch: int = 16
    per_pair: int = 8  # jittered renders of each subject in each colour
    width: int = 192  # transformer width (heads of 32)
    seed: int = 0
    checkpoint_every: int = 500  # transformer steps between checkpoints (0: none)


Report = Callable[[str, int, int, float], None]  # stage, step, total, loss


def train_demo_model(
    folder: Path,
    *,
    templates: list[str],
    plan: Plan | None = None,
    report: Report | None = None,
    checkpoints: Path | None = None,
) -> Path:
    """Train and save the pipeline to `folder`. With `checkpoints`, the VAE, the untrained
    pipeline and the transformer's progress are kept there, and a run started again with the
    same folder resumes where it stopped (each snapshot is also kept, to chart accuracy)."""
    plan = plan or Plan()
    report = report or _log_report
    torch.manual_seed(plan.seed)
    subjects = list(GLYPH_SUBJECTS)[: plan.subjects]
    kit = glyph_kit(subjects, plan.per_pair, size=SIZE, seed=plan.seed)
    pixels = torch.stack([_to_tensor(item.image) for item in kit])
    with tempfile.TemporaryDirectory() as scratch:
        pipe = _base_pipeline(pixels, subjects, plan, report, checkpoints, Path(scratch))
        latents = encode_images(pipe.vae, pixels)
        captions = _caption_variants([item.caption for item in kit], templates)
        _train_transformer(pipe, latents, captions, plan, report, checkpoints)
        folder.mkdir(parents=True, exist_ok=True)
        pipe.save_pretrained(folder)
    write_kit_card(folder, subjects)
    return folder


def _base_pipeline(
    pixels: torch.Tensor, subjects: list[str], plan: Plan, report: Report, checkpoints: Path | None, scratch: Path
) -> FluxPipeline:
    """The pipeline before its transformer learns: a VAE fitted to the kit, fixed random text
    encoders whose vocabulary has each subject word as one token. Kept in `checkpoints`."""
    saved = checkpoints / "base" if checkpoints else None
    if saved and (saved / "model_index.json").is_file():
        log.info("Resuming from %s", saved)
        return FluxPipeline.from_pretrained(saved)
    words = sorted({word for subject in subjects for word in subject.split()})
    tokenizer = t5_tokenizer(words)
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=SHIFT, use_dynamic_shifting=False),
        vae=refit_decoder(_train_vae(pixels, plan, report), plan, report),
        text_encoder=CLIPTextModel(clip_config(WIDTH)),
        tokenizer=clip_tokenizer(scratch / "clip"),
        text_encoder_2=t5_encoder(WIDTH, vocab_size=_round_up(len(tokenizer), 64)),
        tokenizer_2=tokenizer,
        transformer=_transformer(plan.width),
    )
    if saved:
        pipe.save_pretrained(saved)
        write_kit_card(saved, subjects)  # the snapshots' accuracy is judged against it
    return pipe


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def write_kit_card(folder: Path, subjects: list[str]) -> None:
    """What the model was taught, beside its weights: the subjects (the studio shows them to
    designers), their reference masks (what the quality script and tests judge drawings by,
    without the icon package) and the glyphs' license."""
    references = glyph_references(subjects)
    card = {
        "package": f"{glyphs.PACKAGE}@{glyphs.VERSION}",
        "style": "filled",
        "colours": list(PALETTE),
        "subjects": {subject: GLYPH_SUBJECTS[subject] for subject in subjects},
        "reference_side": REFERENCE_SIDE,
        "references": {subject: _pack(mask) for subject, mask in references.items()},
    }
    (folder / KIT_CARD).write_text(json.dumps(card, indent=1) + "\n")
    (folder / "LICENSE-fluent-ui-system-icons.txt").write_text(glyphs.license_text())


def _pack(mask: np.ndarray) -> str:
    return base64.b64encode(np.packbits(mask.ravel()).tobytes()).decode()


def _transformer(width: int) -> FluxTransformer2DModel:
    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=2,
        num_single_layers=4,
        attention_head_dim=32,
        num_attention_heads=width // 32,
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


def _fit(
    vae: AutoencoderKL,
    pixels: torch.Tensor,
    loss_of: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    *,
    stage: str,
    steps: int,
    lr: float,
    seed: int,
    plan: Plan,
    report: Report,
) -> None:
    """Fit the VAE's trainable parameters to random batches of `pixels` with a cosine-annealed AdamW."""
    optimizer = torch.optim.AdamW([p for p in vae.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    vae.train()
    for step in range(1, steps + 1):
        loss = loss_of(pixels[torch.randint(len(pixels), (plan.batch,), generator=generator)], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        report(stage, step, steps, loss.item())
    vae.eval()


def _train_vae(pixels: torch.Tensor, plan: Plan, report: Report) -> AutoencoderKL:
    vae = _vae()

    def loss(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        posterior = vae.encode(batch).latent_dist
        reconstruction = vae.decode(posterior.sample(generator=generator)).sample
        return F.mse_loss(reconstruction, batch) + 1e-6 * posterior.kl().mean()

    _fit(vae, pixels, loss, stage="vae", steps=plan.vae_steps, lr=1e-3, seed=plan.seed, plan=plan, report=report)
    # The pipeline normalises latents with these, as the real FLUX VAE's config does.
    with torch.no_grad():
        latents = torch.cat([vae.encode(pixels[i : i + 64]).latent_dist.mode() for i in range(0, len(pixels), 64)])
    vae.register_to_config(shift_factor=float(latents.mean()), scaling_factor=float(1 / latents.std()))
    return vae


def refit_decoder(vae: AutoencoderKL, plan: Plan, report: Report) -> AutoencoderKL:
    """Teach the decoder every Fluent glyph, filled and regular, with the encoder frozen: the
    latents (and a transformer trained on them) stay as they are. A decoder that has seen only
    filled shapes draws thin strokes in the wrong colour (blue outlines come back violet, green
    teal), which no LoRA can mend: it is the VAE, not the transformer, that paints them."""
    if not plan.decoder_steps:
        return vae
    subjects = list(GLYPH_SUBJECTS)
    kit = [
        item
        for style in ("filled", "regular")
        for item in glyph_kit(subjects, 2, size=SIZE, seed=plan.seed + 7, style=style)
    ]
    pixels = torch.stack([_to_tensor(item.image) for item in kit])
    vae.requires_grad_(False)
    tuned = [vae.decoder, *([vae.post_quant_conv] if vae.post_quant_conv is not None else [])]
    for module in tuned:
        module.requires_grad_(True)

    def loss(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        with torch.no_grad():
            latents = vae.encode(batch).latent_dist.sample(generator=generator)
        return F.mse_loss(vae.decode(latents).sample, batch)

    _fit(
        vae,
        pixels,
        loss,
        stage="decoder",
        steps=plan.decoder_steps,
        lr=3e-4,
        seed=plan.seed + 7,
        plan=plan,
        report=report,
    )
    vae.requires_grad_(False)
    return vae


def refit_model_decoder(source: Path, folder: Path, *, plan: Plan, report: Report) -> Path:
    """A copy of the trained model in `source`, written to `folder`, with its decoder refitted."""
    shutil.copytree(source, folder)
    vae = AutoencoderKL.from_pretrained(folder / "vae")
    torch.manual_seed(plan.seed)
    refit_decoder(vae, plan, report).save_pretrained(folder / "vae")
    return folder


def _caption_variants(captions: list[str], templates: list[str]) -> list[list[str]]:
    """Each image's caption as typed and as each asset type expands it, so the studio's
    expanded prompts (which the model sees truncated to its token limit) mean the same thing."""
    expansions = [" ".join(t.split()) for t in templates if "{subject}" in t]
    return [[text] + [t.replace("{subject}", text) for t in expansions] for text in captions]


def _train_transformer(
    pipe: FluxPipeline,
    latents: torch.Tensor,
    captions: list[list[str]],
    plan: Plan,
    report: Report,
    checkpoints: Path | None,
) -> None:
    variants = sorted({text for options in captions for text in options})
    index = {text: i for i, text in enumerate(variants)}
    # The same FLUX objective a LoRA run uses (its noise-level shift, 3, is this scheduler's too).
    objective = FluxObjective(pipe, max_sequence_length=MAX_SEQUENCE_LENGTH)
    embeddings = objective.embed(variants)
    transformer = pipe.transformer
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=1e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(one_cycle, total=plan.transformer_steps))
    generator = torch.Generator().manual_seed(plan.seed + 1)
    chooser = random.Random(plan.seed)
    progress = Progress(checkpoints, transformer, optimizer, schedule, generator, chooser)
    transformer.train()
    for step in range(progress.resume() + 1, plan.transformer_steps + 1):
        rows = torch.randint(len(latents), (plan.batch,), generator=generator).tolist()
        picks = torch.tensor([index[chooser.choice(captions[row])] for row in rows])
        loss = objective.loss(latents[rows], embeddings, picks, generator)
        progress.step(
            step, plan.transformer_steps, loss, stage="transformer", report=report, every=plan.checkpoint_every
        )
    transformer.eval()


@dataclass
class Progress:
    """A module's training state (the transformer, or the demo ControlNet) in `folder` (none when
    None): the latest, to resume from, and a weights-only snapshot per checkpoint with its step
    and training time."""

    folder: Path | None
    transformer: FluxTransformer2DModel
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    chooser: random.Random
    seconds: float = 0.0
    started: float = 0.0

    def resume(self) -> int:
        self.started = time.monotonic()
        latest = self.folder / "latest.pt" if self.folder else None
        if not latest or not latest.is_file():
            return 0
        state = torch.load(latest, weights_only=False)
        self.transformer.load_state_dict(state["transformer"])
        self.optimizer.load_state_dict(state["optimizer"])
        # Only the step is restored: the rate follows this run's plan, so a run resumed with fewer
        # (or more) steps than it started with anneals to its new end.
        self.schedule.last_epoch = state["schedule"]["last_epoch"]
        step = self.schedule.last_epoch
        factors = zip(self.schedule.base_lrs, self.schedule.lr_lambdas, strict=True)
        rates = [base * factor(step) for base, factor in factors]
        for group, rate in zip(self.optimizer.param_groups, rates, strict=True):
            group["lr"], group["betas"] = rate, self.optimizer.defaults["betas"]
        self.generator.set_state(state["generator"])
        self.chooser.setstate(state["chooser"])
        self.seconds = state["seconds"]
        log.info("Resuming the transformer at step %d (%.0f s trained)", state["step"], self.seconds)
        return int(state["step"])

    def step(self, step: int, total: int, loss: torch.Tensor, *, stage: str, report: Report, every: int) -> None:
        """One optimiser step on `loss` (gradients clipped to 1), reported, and checkpointed every
        `every` steps (0: never) and at the last."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.transformer.parameters(), 1.0)
        self.optimizer.step()
        self.schedule.step()
        report(stage, step, total, loss.item())
        if every and (step % every == 0 or step == total):
            self.save(step, loss.item())

    def save(self, step: int, loss: float) -> None:
        if not self.folder:
            return
        seconds = self.seconds + time.monotonic() - self.started
        state = {
            "step": step,
            "seconds": seconds,
            "transformer": self.transformer.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "generator": self.generator.get_state(),
            "chooser": self.chooser.getstate(),
        }
        snapshots = self.folder / "snapshots"
        snapshots.mkdir(parents=True, exist_ok=True)
        save_file(self.transformer.state_dict(), snapshots / f"transformer-{step:06d}.safetensors")
        with (snapshots / "log.jsonl").open("a") as log_file:
            log_file.write(json.dumps({"step": step, "seconds": round(seconds, 1), "loss": loss}) + "\n")
        # Written beside and renamed: a kill mid-write leaves the previous checkpoint whole.
        torch.save(state, self.folder / "latest.pt.tmp")
        (self.folder / "latest.pt.tmp").replace(self.folder / "latest.pt")


def one_cycle(step: int, *, total: int, warmup: float = 0.05, start: float = 1 / 25) -> float:
    """The learning rate's factor at `step` of `total`: a cosine warm-up from `start` over the
    first `warmup` share, then a cosine down to zero (torch's OneCycleLR, as a function)."""
    warm = max(1.0, warmup * total)
    if step < warm:
        return start + (1 - start) * (1 - math.cos(math.pi * step / warm)) / 2
    return (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1.0, total - warm)))) / 2


_last = {"at": 0.0}


def _log_report(stage: str, step: int, total: int, loss: float) -> None:
    now = time.monotonic()
    if step == total or now - _last["at"] > 10:
        _last["at"] = now
        log.info("%s step %d/%d loss %.4f", stage, step, total, loss)
