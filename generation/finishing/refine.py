"""The refiner stage: a light img2img pass over each render, on the weights already loaded.

Worker only (the engine holds torch). It runs at the render size, before the size stage, where
it is cheap: the brief's "refiner → upscaler" order.
"""

from __future__ import annotations

import math
from typing import Any

from PIL import Image

from ..engine.types import GenerationRequest


def refine(
    engine: Any, images: list[Image.Image], request: GenerationRequest, strength: float
) -> tuple[list[Image.Image], dict[str, Any]]:
    """The images after `engine.refine`, and the record {"strength", "steps", "steps_run", "pipeline"}.
    EngineError from the engine (a family without img2img) is the caller's to handle."""
    refined = engine.refine(images, request, strength=strength)
    steps = max(request.steps, math.ceil(1 / strength))  # as DiffusersEngine.refine schedules them
    record = {
        "strength": strength,
        "steps": steps,
        "steps_run": min(int(steps * strength), steps),  # what img2img runs of them (diffusers' get_timesteps)
        "pipeline": type(engine.refiner_pipe).__name__,
    }
    return refined, record
