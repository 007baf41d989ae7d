"""The published full-size models, built on the meta device from their configs
(generation/memory/published/*.json): exact parameter counts with no weights, no download.
Used by scripts/memory_plan.py and the planner's tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..memory.components import Component, block_count, hidden_width

PUBLISHED = Path(__file__).resolve().parent.parent / "memory" / "published"


def published_models() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(PUBLISHED.glob("*.json"))]


def build(spec: dict[str, Any]) -> torch.nn.Module:
    """One component, on the meta device: shapes and dtypes, no memory."""
    import diffusers
    import transformers

    with torch.device("meta"):
        if spec["library"] == "diffusers":
            return getattr(diffusers, spec["class"]).from_config(spec["config"])
        config = getattr(transformers, spec["config_class"])(**spec["config"])
        return getattr(transformers, spec["class"])(config)


def components_of(model: dict[str, Any]) -> list[Component]:
    components = []
    for name, spec in model["components"].items():
        module = build(spec)
        params = sum(p.numel() for p in module.parameters())
        linear = sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))
        config = spec["config"]
        width, blocks = hidden_width(config), block_count(config)
        components.append(Component(name, spec["class"], params, linear, width=width, blocks=blocks))
    return components
