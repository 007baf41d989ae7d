"""A model entry's speed profile (`ImageModel.options["speed"]`), checked and resolved without torch.

    {"compile": "gpu", "attention": "auto", "cache": {"draft": {"method": "first_block", "value": 0.35}},
     "lora_rank": "auto", "lora_slots": 1}

The admin refuses a profile the workers' cards cannot run (flash attention on a T4); the worker
resolves what it leaves open (`auto`) for its own card and LoRAs, and the engine applies the result
(`engine/speed.py`) and records it on each job.
"""

from __future__ import annotations

from typing import Any

from ..engine.options import ATTENTION_NEEDS
from ..memory.cards import Card


def card_problems(value: dict[str, Any], cards: list[Card]) -> list[str]:
    """What the workers' cards cannot run of a profile, one message each: refused at save."""
    wanted = value.get("attention", "auto")
    needs = ATTENTION_NEEDS.get(wanted)
    if needs is None:
        return []
    return [
        f"{wanted} attention needs compute capability {needs[0]}.{needs[1]}"
        f"{' exactly' if wanted == 'flash_3' else ' or newer'}; the {card.name} has "
        f"{card.capability[0]}.{card.capability[1]} (use auto, or sdpa)"
        for card in cards
        if not runs(wanted, card.capability)
    ]


def runs(backend: str, capability: tuple[int, int]) -> bool:
    needs = ATTENTION_NEEDS.get(backend)
    if needs is None:
        return True
    if backend == "flash_3":
        return capability[0] == needs[0]
    return capability >= needs


def resolve(
    value: dict[str, Any] | None, *, on_gpu: bool, sizes: int, lora_rank: int, cache_dir: str = ""
) -> dict[str, Any]:
    """The profile as one worker applies it: compile decided for its device, `dynamic` from how
    many sizes the asset types offer, the hot-swap rank from the studio's LoRAs (`lora_rank`: the
    largest of the family's enabled LoRAs). What the engine gets (`engine/speed.py`)."""
    value = value or {}
    mode = value.get("compile", "off")
    compiled = mode == "always" or (mode == "gpu" and on_gpu)
    rank = value.get("lora_rank", "auto")
    return {
        "compile": compiled,
        "dynamic": value.get("dynamic", sizes > 1),
        "attention": value.get("attention", "auto"),
        "cache": value.get("cache", {}),
        # Hot-swap only matters where a change of LoRA would recompile.
        "lora_rank": (max(lora_rank, 4) if rank == "auto" else rank) if compiled else 0,
        "lora_slots": value.get("lora_slots", 1),
        "cache_dir": cache_dir,
    }


def summary(record: dict[str, Any]) -> str:
    """A job's speed record in words, for its page: "compiled · flash attention · First Block
    Cache at 0.35". Empty where the job ran as plain diffusers."""
    parts = []
    if record.get("compiled"):
        parts.append("compiled")
    if (attention := record.get("attention")) and attention != "sdpa":
        parts.append(f"{attention} attention")
    if cache := record.get("cache"):
        parts.append(str(cache))
    if record.get("hotswap"):
        parts.append("LoRAs hot-swapped")
    return " · ".join(parts)
