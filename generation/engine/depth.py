"""A depth map for a depth ControlNet, by a transformers depth-estimation model (Depth Anything,
DPT, ...) read from a local folder once per worker. Torch only, no Django: the engine calls it
at the size the model draws, the preview task through generation/control/depth.py."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .devices import module_bytes

# Models whose output is a distance (far is large) rather than a relative inverse depth (near is
# large, as MiDaS, DPT and Depth Anything give and as depth ControlNets were trained on).
_METRIC_MODEL_TYPES = {"glpn", "zoedepth", "depth_pro"}


# The estimators this worker has read, by (folder, device): kept between jobs, counted in the
# worker's memory budget (worker/engines._make_room), two at most.
_read: dict[tuple[str, str], tuple[Any, Any, bool]] = {}
_lock = threading.Lock()
KEPT = 2


def _loaded(folder: str, device: str) -> tuple[Any, Any, bool]:
    """The estimator's processor and model, read once per worker (a small model: Depth Anything
    V2 Small is 25 M parameters), and whether it gives distances rather than inverse depth."""
    with _lock:
        if (folder, device) not in _read:
            while len(_read) >= KEPT:
                _read.pop(next(iter(_read)))
            _read[(folder, device)] = _read_estimator(folder, device)
        return _read[(folder, device)]


def _read_estimator(folder: str, device: str) -> tuple[Any, Any, bool]:
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    processor = AutoImageProcessor.from_pretrained(folder)
    model = AutoModelForDepthEstimation.from_pretrained(folder).to(device).eval()
    config = model.config
    metric = config.model_type in _METRIC_MODEL_TYPES or getattr(config, "depth_estimation_type", "") == "metric"
    return processor, model, metric


def is_read(folder: Path) -> bool:
    """Whether this worker holds the estimator in `folder` (on any device)."""
    return any(read == str(folder) for read, _device in list(_read))


def loaded_bytes() -> int:
    """What the estimators this worker holds take, for its memory budget."""
    return sum(module_bytes(model) for _processor, model, _metric in list(_read.values()))


def depth_map(image: Image.Image, folder: Path, device: str | torch.device = "cpu") -> Image.Image:
    """The image's depth as a depth ControlNet takes it: grey, near is white, at the image's size."""
    processor, model, metric = _loaded(str(folder), str(device))
    inputs = processor(images=image.convert("RGB"), return_tensors="pt").to(device)
    with torch.inference_mode():
        predicted = model(**inputs).predicted_depth.float()
    size = (image.height, image.width)
    depth = torch.nn.functional.interpolate(predicted[:, None], size=size, mode="bicubic", align_corners=False)[0, 0]
    depth = -depth if metric else depth
    low, high = depth.min(), depth.max()
    scaled = (depth - low) / (high - low) if high > low else torch.zeros_like(depth)
    grey = (scaled.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(grey)).convert("RGB")
