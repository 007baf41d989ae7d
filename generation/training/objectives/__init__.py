"""What differs between families when training a LoRA: the pipeline, the network the adapter
goes on, how captions become conditioning, how latents are normalised, the loss, the saver.

One small class per family (one module each) behind a string-keyed table, like the engine's
adapters. The worker imports this package; the web process reads only `training/defaults.py`.
"""

from __future__ import annotations

from .base import Conditioning, Objective
from .flux import FluxObjective
from .flux2 import Flux2KleinObjective
from .hidream import HiDreamObjective
from .qwenimage import QwenImageObjective
from .sd3 import SD3Objective
from .sdxl import SDXLObjective
from .zimage import ZImageObjective

OBJECTIVES: dict[str, type[Objective]] = {
    cls.family: cls
    for cls in (
        FluxObjective,
        SD3Objective,
        SDXLObjective,
        Flux2KleinObjective,
        ZImageObjective,
        QwenImageObjective,
        HiDreamObjective,
    )
}

__all__ = [
    "OBJECTIVES",
    "Conditioning",
    "Flux2KleinObjective",
    "FluxObjective",
    "HiDreamObjective",
    "Objective",
    "QwenImageObjective",
    "SD3Objective",
    "SDXLObjective",
    "ZImageObjective",
]
