"""A LoRA training run's memory on a card, and the memory savers that make it fit.

What a training step holds on the card: the frozen denoiser's weights (the card's half precision,
or quantized under the LoRA, QLoRA-style), the text encoders unless their embeddings are cached,
the VAE, the LoRA's weights, gradients and optimizer state, and the activations kept for the
backward pass. The savers, cheapest in speed first:

- `cached_embeddings`: captions are encoded once, each encoder visiting the card in turn, then
  the encoders leave (latents are cached likewise: the VAE stays, it is small).
- `adam8bit`: bitsandbytes' 8-bit AdamW keeps the optimizer's two moments in a byte each.
- `checkpointing`: gradient checkpointing on the trained network keeps each block's input only
  and recomputes the rest in the backward pass (about a third slower).
- a quantized base: the frozen weights in int8 (torchao), then nf4 (bitsandbytes).

The weights are exact (from the folder's headers or the published configs); the LoRA's size and
the activations are estimates (below) that a GPU run has to confirm: docs/benchmarks.md says
whether one did. No torch: the run form shows the plan before Start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .cards import Card
from .components import Component
from .plan import ENCODE_BYTES, TEXT_TOKENS, base_precision, weight_bytes

SAVERS = ("cached_embeddings", "adam8bit", "checkpointing")
SAVER_LABELS = {
    "cached_embeddings": "embeddings cached (text encoders off the card)",
    "adam8bit": "8-bit AdamW",
    "checkpointing": "gradient checkpointing",
}
QUANTIZED_BASES = ("int8", "nf4")

# Activations a transformer block keeps for its backward pass, in bytes per token per unit of
# width at 16-bit with fused attention: 34 (Korthikanti et al. 2022, "Reducing Activation
# Recomputation in Large Transformer Models", section 4.1). Checkpointed, a block keeps its input
# (2 bytes per token per unit of width) and one block at a time recomputes the 34.
BLOCK_ACTIVATION, CHECKPOINT_ACTIVATION = 34, 2
# A block of width h holds about 12 h^2 linear weights (attention 4 h^2, a 4x MLP 8 h^2), and a
# rank-r LoRA on its attention and MLP layers r (in + out) per layer: 18 r h, 1.5 r / h of them.
BLOCK_WEIGHTS, LORA_SHARE = 12, 1.5
# A trained parameter in fp32: its weight and gradient (4 + 4 bytes), AdamW's two moments (8 bytes,
# or 2 in 8-bit).
LORA_BYTES = {"adamw": 16, "adam8bit": 10}


@dataclass(frozen=True)
class RunSize:
    rank: int = 16
    resolution: int = 1024
    batch: int = 1

    def __str__(self) -> str:
        return f"rank {self.rank} at {self.resolution} px, batch {self.batch}"


@dataclass(frozen=True)
class Savers:
    cached_embeddings: bool = False
    adam8bit: bool = False
    checkpointing: bool = False
    base: str = ""  # "" (the card's half precision), "int8" or "nf4"

    @property
    def names(self) -> list[str]:
        return [name for name in SAVERS if getattr(self, name)] + ([f"{self.base} base"] if self.base else [])

    def __str__(self) -> str:
        labels = [SAVER_LABELS[name] for name in SAVERS if getattr(self, name)]
        if self.base:
            labels.append(f"base weights in {self.base}")
        return ", ".join(labels) or "no memory savers"


@dataclass(frozen=True)
class TrainingPlan:
    card: Card
    size: RunSize
    savers: Savers
    parts: dict[str, int]  # what the peak is made of, in bytes
    # The largest encoder cannot visit the card beside the VAE: the captions are encoded on the
    # CPU (once per run, minutes for an LLM encoder) and the card holds training only.
    encode_on_cpu: bool = False

    @property
    def peak_bytes(self) -> int:
        return self.parts["training"] if self.encode_on_cpu else max(self.parts["training"], self.parts["encoding"])

    @property
    def fits(self) -> bool:
        return self.peak_bytes <= self.card.usable_bytes

    @property
    def peak_gb(self) -> float:
        return round(self.peak_bytes / 2**30, 1)

    def summary(self) -> str:
        verdict = "fits" if self.fits else "does not fit"
        cpu = "; captions encoded on the CPU" if self.encode_on_cpu else ""
        peak = f"peak {self.peak_gb:g} of {self.card.gb:g} GB"
        return f"{self.size} on the {self.card.name}: {peak}, {verdict}, {self.savers}{cpu}"

    def as_json(self) -> dict[str, Any]:
        return {
            "card": self.card.key,
            "card_name": self.card.name,
            "rank": self.size.rank,
            "resolution": self.size.resolution,
            "batch": self.size.batch,
            "savers": {name: getattr(self.savers, name) for name in SAVERS},
            "base": self.savers.base,
            "encode_on_cpu": self.encode_on_cpu,
            "peak_gb": self.peak_gb,
            "fits": self.fits,
            "parts_gb": {name: round(value / 2**30, 2) for name, value in self.parts.items()},
            "summary": self.summary(),
        }


def ladder(card: Card) -> list[Savers]:
    """The savers to try, from none (the whole pipeline on the card, plain AdamW) to all of them.
    bitsandbytes (8-bit AdamW, nf4) runs on CUDA cards only: every card planned for is one."""
    cached = Savers(cached_embeddings=True)
    with_adam = replace(cached, adam8bit=True)
    checkpointed = replace(with_adam, checkpointing=True)
    return [Savers(), cached, with_adam, checkpointed, *(replace(checkpointed, base=q) for q in QUANTIZED_BASES)]


def training_parts(components: list[Component], card: Card, size: RunSize, savers: Savers) -> dict[str, int]:
    """Bytes on the card while training and while encoding the captions, by what holds them."""
    compute = card.compute
    denoisers = [c for c in components if c.role == "denoiser"]
    encoders = [c for c in components if c.role == "encoder"]
    others = [c for c in components if c.role not in ("denoiser", "encoder")]
    base = savers.base or compute
    frozen = sum(weight_bytes(c, base, compute) for c in denoisers)
    encoder_bytes = [weight_bytes(c, base_precision(c, card), compute) for c in encoders]
    rest = sum(weight_bytes(c, base_precision(c, card), compute) for c in others)
    lora = sum(lora_params(c, size.rank) for c in denoisers) * LORA_BYTES["adam8bit" if savers.adam8bit else "adamw"]
    activations = sum(_activations(c, size, savers.checkpointing) for c in denoisers)
    resident_encoders = 0 if savers.cached_embeddings else sum(encoder_bytes)
    parts = {
        "base": frozen,
        "encoders": resident_encoders,
        "vae and rest": rest,
        "lora and optimizer": lora,
        "activations": activations,
    }
    # Cached: each encoder visits the card in turn with the VAE, before the denoiser arrives.
    encoding = max(encoder_bytes, default=0) + rest + ENCODE_BYTES if savers.cached_embeddings else 0
    return {**parts, "training": sum(parts.values()), "encoding": encoding}


def lora_params(component: Component, rank: int) -> int:
    width = component.width or 3072
    return int(LORA_SHARE * rank * component.linear_params / width)


def _activations(component: Component, size: RunSize, checkpointing: bool) -> int:
    width = component.width or 3072
    # A UNet's config counts no blocks: as many as its linear weights would make of 12 h^2 each.
    blocks = component.blocks or max(1, round(component.linear_params / (BLOCK_WEIGHTS * width * width)))
    tokens = (size.resolution // 16) ** 2 + TEXT_TOKENS
    per_block = tokens * size.batch * width
    if checkpointing:
        return per_block * (blocks * CHECKPOINT_ACTIVATION + BLOCK_ACTIVATION)
    return per_block * blocks * BLOCK_ACTIVATION


def plan_training(components: list[Component], card: Card, size: RunSize) -> TrainingPlan:
    """The first savers of the ladder that fit the card (the fastest run that fits), or all of
    them with `fits` False when none does."""
    plan = None
    for savers in ladder(card):
        parts = training_parts(components, card, size, savers)
        cpu = savers.cached_embeddings and parts["encoding"] > card.usable_bytes
        plan = TrainingPlan(card, size, savers, parts, encode_on_cpu=cpu)
        if plan.fits:
            return plan
    assert plan is not None
    return plan


def unsaved(components: list[Component], card: Card, size: RunSize) -> TrainingPlan:
    """The run without any saver: what training the whole pipeline as loaded would need."""
    return TrainingPlan(card, size, Savers(), training_parts(components, card, size, Savers()))


def smaller_fit(components: list[Component], card: Card, size: RunSize) -> TrainingPlan | None:
    """A run that fits where `size` does not: a lower resolution first (what most of the cost
    is), then a lower rank, then batch 1; None when nothing fits this card."""
    resolutions = [r for r in (768, 512) if r < size.resolution]
    ranks = [r for r in (size.rank // 2, size.rank // 4) if 4 <= r < size.rank]
    tries = [replace(size, resolution=r) for r in resolutions]
    tries += [replace(size, resolution=r, rank=k) for r in [size.resolution, *resolutions] for k in ranks]
    if size.batch > 1:
        tries += [replace(t, batch=1) for t in [size, *tries]]
    for smaller in tries:
        plan = plan_training(components, card, smaller)
        if plan.fits:
            return plan
    return None
