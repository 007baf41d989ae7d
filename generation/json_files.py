"""Reading the JSON files a model, add-on or LoRA folder holds (config.json, model_index.json): any
file that is not a readable JSON object, however it fails, is one ValueError with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_BYTES = 4 * 2**20  # a diffusers or transformers config is a few kB


class NotAConfig(ValueError):
    pass


def read_config(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, or NotAConfig (OSError when it cannot be read at all)."""
    with path.open("rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise NotAConfig(f"{path.name} is larger than a config file")
    try:
        config = json.loads(data)
    except (ValueError, RecursionError) as exc:  # not JSON, too long a number, nested too deep
        raise NotAConfig(f"{path.name} is not readable JSON ({exc.__class__.__name__})") from None
    if not isinstance(config, dict):
        raise NotAConfig(f"{path.name} holds a {type(config).__name__}, not the settings of a folder")
    return config
