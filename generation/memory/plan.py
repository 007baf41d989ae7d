"""The fastest arrangement of a model's components that fits a card.

Each component gets a precision (the card's half precision, fp32, or weight quantization: fp8,
int8, nf4) and a placement: `gpu` (resident), `offload` (on the GPU while it runs, in CPU
memory between: the text encoders leave once the prompt is encoded) or `sequential` (streamed
layer by layer: fits anything, minutes an image). Candidates are tried from the fastest; the
first whose predicted peak fits the card is the plan.

The peak is a prediction: weights from the component sizes (exact), activations from a formula
(below) that a GPU run checks (scripts/memory_plan.py --measure; docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..engine.options import PLACEMENTS, PRECISIONS
from .cards import Card
from .components import Component

# Bytes a parameter takes in each precision. nf4: 4 bits plus an fp32 scale per block of 64
# (bitsandbytes); int8 and fp8 weights carry a scale per output channel, negligible here.
BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "nf4": 0.5625}
# GGUF block types as stored (ggml's block sizes): a GGUF transformer is kept at its file's size.
GGUF_BYTES = {
    "F32": 4.0,
    "F16": 2.0,
    "BF16": 2.0,
    "Q8_0": 34 / 32,
    "Q6_K": 210 / 256,
    "Q5_K": 176 / 256,
    "Q5_1": 24 / 32,
    "Q5_0": 22 / 32,
    "Q4_K": 144 / 256,
    "Q4_1": 20 / 32,
    "Q4_0": 18 / 32,
    "Q3_K": 110 / 256,
    "Q2_K": 84 / 256,
}
# Encoders this large are worth quantizing (T5-XXL, the LLM encoders); CLIP is not.
BIG_ENCODER = 10**9

# Activations, an estimate: a denoiser's step holds about this many tensors of tokens x width
# in the compute dtype at its peak (attention through SDPA, so no tokens^2 matrix); guidance
# doubles the batch. The VAE's decoder holds about this many full-size maps of 128 channels;
# tiled, a 512 x 512 tile's worth.
DENOISE_TENSORS = 32
DECODE_MAPS = 6
DECODER_CHANNELS = 128
TILE = 512
TEXT_TOKENS = 512
ENCODE_BYTES = 512 * 2**20  # an encoder's activations for one prompt
# A streamed component has one layer on the GPU at a time: a block of a large DiT is well under 2 GB.
SEQUENTIAL_SHARE, SEQUENTIAL_MAX = 0.05, 2 * 2**30


@dataclass(frozen=True)
class Choice:
    precision: str
    placement: str = "gpu"

    def __str__(self) -> str:
        where = {"gpu": "on the GPU", "offload": "offloaded after use", "sequential": "streamed"}[self.placement]
        return f"{self.precision} {where}"


@dataclass(frozen=True)
class Job:
    """What the plan must hold besides weights: the largest image of the asset types, the batch."""

    width: int = 1024
    height: int = 1024
    batch: int = 1
    guidance: bool = True  # classifier-free guidance: two passes a step


@dataclass
class Plan:
    card: Card
    choices: dict[str, Choice]
    peak_bytes: int
    vae_tiling: bool = False
    weights_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return self.peak_bytes <= self.card.usable_bytes

    @property
    def peak_gb(self) -> float:
        return round(self.peak_bytes / 2**30, 1)

    @property
    def resident_bytes(self) -> int:
        """What stays on the card between jobs: the weights placed `gpu`."""
        return sum(self.weights_bytes.get(name, 0) for name, c in self.choices.items() if c.placement == "gpu")

    @property
    def sequential(self) -> bool:
        return any(choice.placement == "sequential" for choice in self.choices.values())

    def summary(self) -> str:
        """One line for the admin and the table: what is where, then the peak."""
        parts = [f"{name} {choice}" for name, choice in self.choices.items()]
        if self.vae_tiling:
            parts.append("VAE tiled")
        return "; ".join(parts) + f" (peak {self.peak_gb:g} GB of {self.card.gb:g})"

    def as_json(self) -> dict[str, Any]:
        return {
            "card": self.card.key,
            "components": {
                name: {"precision": c.precision, "placement": c.placement} for name, c in self.choices.items()
            },
            "vae_tiling": self.vae_tiling,
            "peak_gb": self.peak_gb,
            "fits": self.fits,
        }


class PlanError(ValueError):
    pass


def fit_together(plans: list[Plan]) -> bool:
    """Whether the models of these plans can stay loaded on one card together: each runs at its
    predicted peak while the others' resident weights stay on the card. One model fits alone
    where its own plan does."""
    resident = sum(plan.resident_bytes for plan in plans)
    return all(resident - plan.resident_bytes + plan.peak_bytes <= plan.card.usable_bytes for plan in plans)


def weight_bytes(component: Component, precision: str, compute: str) -> int:
    """The component's weights at `precision`: quantization reaches its linear layers only; a
    component saved quantized weighs what it stores."""
    if component.stored and precision == component.stored:
        return component.stored_bytes
    if precision in ("fp32", "bf16", "fp16"):
        return int(component.params * BYTES[precision])
    per = GGUF_BYTES[precision] if precision in GGUF_BYTES else BYTES[precision]
    rest = component.params - component.linear_params
    return int(component.linear_params * per + rest * BYTES[compute])


def predicted_peak(
    components: list[Component], choices: dict[str, Choice], card: Card, job: Job, *, tiling: bool
) -> tuple[int, dict[str, int]]:
    """The most the card holds at once over the three phases: encoding the prompt, denoising,
    decoding. Resident components count in each; an offloaded one only while it runs."""
    sizes = {c.name: weight_bytes(c, choices[c.name].precision, card.compute) for c in components}
    resident = sum(sizes[c.name] for c in components if choices[c.name].placement == "gpu")

    def visiting(c: Component) -> int:
        placement = choices[c.name].placement
        streamed = min(int(sizes[c.name] * SEQUENTIAL_SHARE), SEQUENTIAL_MAX)
        return {"gpu": 0, "offload": sizes[c.name], "sequential": streamed}[placement]

    encoders = [c for c in components if c.role == "encoder"]
    encode = resident + max((visiting(c) for c in encoders), default=0) + ENCODE_BYTES
    denoise = resident + sum(
        visiting(c) + _denoise_activations(c, job, card) for c in components if c.role == "denoiser"
    )
    decode = resident + sum(visiting(c) + _decode_activations(job, tiling) for c in components if c.role == "vae")
    return max(encode, denoise, decode), sizes


def _denoise_activations(component: Component, job: Job, card: Card) -> int:
    tokens = (job.width // 16) * (job.height // 16) + TEXT_TOKENS
    passes = 2 if job.guidance else 1
    return DENOISE_TENSORS * job.batch * passes * tokens * (component.width or 3072) * int(BYTES[card.compute])


def _decode_activations(job: Job, tiling: bool) -> int:
    side = min(job.width, TILE) * min(job.height, TILE) if tiling else job.width * job.height
    return DECODE_MAPS * job.batch * side * DECODER_CHANNELS * 2


def base_precision(component: Component, card: Card) -> str:
    """Unquantized: the card's half precision, but fp32 where fp16 overflows (T5 on a T4) and for
    the VAE on a card without bf16 (SDXL's VAE turns fp16 images black)."""
    if not card.bf16 and (component.overflows_in_fp16 or component.role == "vae"):
        return "fp32"
    return card.compute


def denoiser_options(card: Card) -> list[Choice]:
    """Fastest first: unquantized and resident, fp8 where the card computes it, int8, the
    unquantized denoiser offloaded while the encoders run (its weights cross to the card once a
    job), nf4; then quantized and offloaded, for a denoiser and an encoder that fit the card
    one at a time only."""
    quantized = ["fp8", "int8", "nf4"] if card.fp8 else ["int8", "nf4"]
    resident = [Choice(card.compute), *(Choice(q) for q in quantized[:-1])]
    return [
        *resident,
        Choice(card.compute, "offload"),
        Choice(quantized[-1]),
        *(Choice(q, "offload") for q in quantized),
    ]


def encoder_options(component: Component, card: Card) -> list[Choice]:
    base = base_precision(component, card)
    if component.params < BIG_ENCODER:
        return [Choice(base), Choice(base, "offload")]
    options = [Choice(base), Choice(base, "offload")]
    if base == "fp32":  # T5 on a T4: int8 before fp32 offloaded (19 GB of CPU-GPU traffic a prompt)
        options = [Choice(base), Choice("int8"), Choice("int8", "offload"), Choice(base, "offload")]
    return [*options, Choice("int8", "offload"), Choice("nf4", "offload")]


def candidates(components: list[Component], card: Card, fixed: dict[str, Choice]) -> Iterator[dict[str, Choice]]:
    """Arrangements from the fastest: the denoiser's precision matters at every step, so its
    options lead; for each, the encoders go from resident to offloaded to quantized together."""
    denoisers = [c for c in components if c.role == "denoiser"]
    encoders = [c for c in components if c.role == "encoder"]
    rest = {
        c.name: fixed.get(c.name, Choice(base_precision(c, card))) for c in components if c.role in ("vae", "other")
    }
    encoder_ladders = {c.name: encoder_options(c, card) for c in encoders}
    rungs = max((len(ladder) for ladder in encoder_ladders.values()), default=1)
    for denoise in denoiser_options(card):
        for rung in range(rungs):
            choices = dict(rest)
            for c in denoisers:
                choices[c.name] = fixed.get(c.name, denoise)
            for c in encoders:
                ladder = encoder_ladders[c.name]
                choices[c.name] = fixed.get(c.name, ladder[min(rung, len(ladder) - 1)])
            yield {c.name: choices[c.name] for c in components}
    yield {c.name: fixed.get(c.name, Choice(base_precision(c, card), "sequential")) for c in components}


def plan_for(
    components: list[Component],
    card: Card,
    job: Job | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    given: dict[str, Choice] | None = None,
) -> Plan:
    """The fastest plan that fits `card`, or the last tried (sequential offload, or the
    overrides as given) with `fits` False when none does. `given`: precisions the weights come
    in and the plan keeps (a GGUF transformer's block type)."""
    job = job or Job()
    fixed = parse_overrides(overrides or {}, components, card)
    given = {**{c.name: Choice(c.stored) for c in components if c.stored}, **(given or {})}
    for name, choice in given.items():
        fixed[name] = Choice(choice.precision, fixed[name].placement if name in fixed else choice.placement)
    plan = None
    seen: set[tuple[tuple[str, Choice], ...]] = set()
    for choices in candidates(components, card, fixed):
        key = tuple(sorted(choices.items()))
        if key in seen:
            continue
        seen.add(key)
        for tiling in (False, True):
            peak, sizes = predicted_peak(components, choices, card, job, tiling=tiling)
            plan = Plan(card, choices, peak, vae_tiling=tiling, weights_bytes=sizes)
            if plan.fits:
                return plan
    assert plan is not None
    return plan


def parse_overrides(overrides: dict[str, Any], components: list[Component], card: Card) -> dict[str, Choice]:
    """An entry's `options["memory"]`: {"transformer": {"precision": "int8", "placement": "gpu"}}.
    Each names a component of the model and a precision and placement the card can run."""
    names = {c.name for c in components}
    fixed = {}
    for name, value in overrides.items():
        if name not in names:
            raise PlanError(f"memory: the model has no component {name!r} (it has {', '.join(sorted(names))}).")
        if not isinstance(value, dict) or set(value) - {"precision", "placement"}:
            raise PlanError(f'memory: {name} takes {{"precision": ..., "placement": ...}}.')
        precision, placement = value.get("precision", card.compute), value.get("placement", "gpu")
        if precision not in PRECISIONS:
            raise PlanError(f"memory: {name}'s precision is one of {', '.join(PRECISIONS)}.")
        if placement not in PLACEMENTS:
            raise PlanError(f"memory: {name}'s placement is one of {', '.join(PLACEMENTS)}.")
        if problem := card_problem(precision, card):
            raise PlanError(f"memory: {name} in {precision}: {problem}")
        fixed[name] = Choice(precision, placement)
    return fixed


def stored_problems(components: list[Component], card: Card) -> list[str]:
    """What of the components saved quantized `card` cannot run (fp8 below compute capability 8.9)."""
    problems = []
    for c in components:
        if c.stored.startswith("fp8") and not card.fp8:
            problems.append(f"{c.name} is saved in {c.stored}: {card_problem('fp8', card)}")
    return problems


def card_problem(precision: str, card: Card) -> str:
    """Why `card` cannot compute in `precision` ("" when it can)."""
    if precision == "bf16" and not card.bf16:
        return f"the {card.name} has no bf16 (compute capability {card.capability[0]}.{card.capability[1]}); use fp16."
    if precision == "fp8" and not card.fp8:
        cc = f"{card.capability[0]}.{card.capability[1]}"
        return f"fp8 needs compute capability 8.9 or higher (Ada, Hopper); the {card.name} has {cc}."
    return ""
