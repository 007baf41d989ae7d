"""The cards a team's workers have: memory, and what the card computes in (bf16 from compute
capability 8.0, fp8 from 8.9). https://developer.nvidia.com/cuda-gpus"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Card:
    key: str
    name: str
    gb: float
    capability: tuple[int, int]

    @property
    def bf16(self) -> bool:
        return self.capability >= (8, 0)

    @property
    def fp8(self) -> bool:
        return self.capability >= (8, 9)

    @property
    def compute(self) -> str:
        """The half precision it computes in: a T4 has no bf16, so fp16."""
        return "bf16" if self.bf16 else "fp16"

    @property
    def usable_bytes(self) -> int:
        """What a plan may take: the card less what the CUDA context and the allocator keep."""
        return int((self.gb - CONTEXT_GB) * 2**30)


# What CUDA's context, cuBLAS workspaces and the caching allocator's slack take on any card.
CONTEXT_GB = 0.8

CARDS = {
    card.key: card
    for card in (
        Card("t4", "NVIDIA T4", 16, (7, 5)),
        Card("a10g", "NVIDIA A10G", 24, (8, 6)),
        Card("l4", "NVIDIA L4", 24, (8, 9)),
        Card("a100-40", "NVIDIA A100 40 GB", 40, (8, 0)),
        Card("h100", "NVIDIA H100 80 GB", 80, (9, 0)),
    )
}
# A card of any other size, asked for by its memory ("20", "20gb"): computing in bf16, no fp8.
CUSTOM_CAPABILITY = (8, 0)
MIN_GB, MAX_GB = 4, 1024


class CardError(ValueError):
    pass


def card_of(text: str) -> Card:
    """A named card (`t4`, `a10g`...) or one of so many GB."""
    key = text.strip().lower()
    if key in CARDS:
        return CARDS[key]
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(gb|g)?", key)
    if not match:
        names = ", ".join(CARDS)
        raise CardError(f"{text!r} is not a card: name one of {names}, or give its memory in GB (e.g. 20).")
    gb = float(match.group(1))
    if not MIN_GB <= gb <= MAX_GB:
        raise CardError(f"A card of {gb:g} GB? Give between {MIN_GB} and {MAX_GB} GB.")
    return Card(f"{gb:g}gb", f"{gb:g} GB card", gb, CUSTOM_CAPABILITY)


def cards_of(text: str) -> list[Card]:
    """STUDIO_WORKER_CARDS: the cards named, comma-separated."""
    return [card_of(part) for part in text.split(",") if part.strip()]
