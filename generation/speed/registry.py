"""A model's speed profile resolved from the registry: the sizes its asset types offer and the
ranks of its family's LoRAs (generation/speed/profile.py resolves the rest)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from ..lora_files import LoraError, tensor_shapes
from ..models import AssetPreset, BrandLora, ImageModel
from .profile import resolve

log = logging.getLogger(__name__)


def speed_for(model: ImageModel, *, on_gpu: bool) -> dict[str, Any]:
    """The entry's profile as this worker applies it (`on_gpu`: it renders on a CUDA card)."""
    return resolve(
        (model.options or {}).get("speed"),
        on_gpu=on_gpu,
        sizes=len(offered_sizes(model)),
        lora_rank=largest_lora_rank(model.family),
        cache_dir=str(settings.STUDIO_COMPILE_CACHE_DIR),
    )


def offered_sizes(model: ImageModel) -> set[tuple[int, int]]:
    """The sizes the asset types offer that this model draws: one compiled shape, or several."""
    sizes = {(int(w), int(h)) for preset in AssetPreset.objects.all() for w, h in preset.allowed_sizes or []}
    return {size for size in sizes if max(size) <= model.max_side}


def largest_lora_rank(family: str) -> int:
    """The largest rank of the family's enabled brand LoRAs (0: none), from their headers: the
    hot-swap slots must hold any of them."""
    ranks = [0]
    for lora in BrandLora.objects.filter(family=family, enabled=True):
        try:
            shapes = tensor_shapes(lora.path)
        except (OSError, LoraError):
            log.warning("LoRA %s could not be read for its rank", lora.file)
            continue
        ranks += [shape[0] for key, shape in shapes.items() if _is_down(key) and shape]
    return max(ranks)


def _is_down(key: str) -> bool:
    """The LoRA's first matrix (rank x inputs), in the layouts people use."""
    return any(part in key for part in ("lora_A.", "lora_down.", ".down.weight"))
