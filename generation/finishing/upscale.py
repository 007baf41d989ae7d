"""The size stage: a render brought to exactly the output size, by an upscaler's passes then Lanczos.

Worker only (torch, spandrel). The model runs tile by tile: each tile is read with a margin of
context around it and only its centre is kept, so tiles meet without seams, and the memory on the
device is bounded by the tile, not the image; the result is assembled in a uint8 array on the CPU.
"""

from __future__ import annotations

import resource
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .inspect import read_failure
from .plan import UpscalerRef

TILE = {"cuda": 512, "cpu": 256}  # px of input per tile
MIN_TILE = 64  # the smallest tile an out-of-memory retry goes down to
OVERLAP = 32  # px of context read on each side of a tile, then cut off
CACHE_SIZE = 2  # descriptors kept loaded per worker process

_cache: OrderedDict[tuple[str, int, str], Any] = OrderedDict()
_lock = threading.Lock()


def to_size(
    image: Image.Image, size: tuple[int, int], upscaler: UpscalerRef | None, *, device: str
) -> tuple[Image.Image, dict[str, Any]]:
    """`image` at exactly `size`, and what was done: {"method", "passes", "tile", "half",
    "device", "peak_memory_mb"}. With an upscaler its model runs pass after pass while a pass is
    worth it (`_another_pass`: 64 px to 1024 with a 4x model is two passes, to 512 one, then Lanczos), then
    Lanczos to the exact size; without one, Lanczos alone."""
    image = image.convert("RGB")
    if upscaler is None or (image.width >= size[0] and image.height >= size[1]):
        record = {"method": "Lanczos", "passes": 0, "tile": 0, "half": False, "device": "cpu", "peak_memory_mb": None}
        return _lanczos(image, size), record
    import torch

    from ..engine.devices import resolve_device  # torch, as above

    where = resolve_device(device)
    descriptor = load(upscaler_path(upscaler), where)
    tile = _tile_for(descriptor, where.type)
    half = descriptor.dtype == torch.float16
    before = _peak_start(where)
    passes = 0
    while passes == 0 or _another_pass(image, size, descriptor.scale):
        try:
            image = run_tiled(descriptor, image, tile=tile)
        except torch.OutOfMemoryError:
            # Another job shares the card: smaller tiles need less of it (the result is the same).
            if tile == 0 or tile // 2 < MIN_TILE:
                raise
            torch.cuda.empty_cache()
            tile //= 2
            continue
        passes += 1
    record = {
        "method": f"{upscaler.architecture or descriptor.architecture.name} {descriptor.scale}x ({upscaler.name})",
        "passes": passes,
        "tile": tile,
        "half": half,
        "device": str(where),
        "peak_memory_mb": _peak_mb(where, before),
    }
    return _lanczos(image, size), record


def _another_pass(image: Image.Image, size: tuple[int, int], scale: int) -> bool:
    """After the first pass (always made, so a 4x model serves a 2x tier), whether one more is worth
    it: only while what is left to enlarge is more than the square root of the model's scale (2 for a
    4x model). Below that most of the pass is thrown away by the Lanczos step down: 256 px to 512
    with a 4x model would draw 1024 px, sixteen times the work of the 64 px pass before it, to keep a
    quarter of it; Lanczos doubles a model's clean edges well."""
    left = max(size[0] / image.width, size[1] / image.height)
    return left > max(1.0, float(scale) ** 0.5) + 1e-9


def _lanczos(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    width, height = size  # a list from JSON params is fine too
    return image if image.size == (width, height) else image.resize((width, height), Image.Resampling.LANCZOS)


def upscaler_path(upscaler: UpscalerRef) -> Path:
    """The file under STUDIO_UPSCALERS_DIR; a plan naming one outside it (edited params) is refused."""
    from django.conf import settings

    root = Path(settings.STUDIO_UPSCALERS_DIR).resolve()
    path = (root / upscaler.file).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise ValueError(f"The upscaler file {Path(upscaler.file).name} is not in this worker's upscalers folder.")
    return path


def load(path: Path, device: Any) -> Any:
    """The file's spandrel descriptor on `device` (half precision on CUDA where the architecture
    supports it), loaded once per worker process: an LRU of CACHE_SIZE (file, device) pairs."""
    key = (str(path), path.stat().st_mtime_ns, str(device))  # a file replaced in place is loaded again
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    import spandrel

    try:
        descriptor = spandrel.ModelLoader().load_from_file(path)
    except Exception as exc:  # the file changed since the admin checked it
        raise ValueError(f"{path.name} is not an upscaler spandrel can load: {read_failure(exc)}") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.scale < 2:
        raise ValueError(f"{path.name} is not a super-resolution model.")
    descriptor.to(device).eval()
    if device.type == "cuda" and descriptor.supports_half:
        descriptor.half()
    with _lock:
        _cache[key] = descriptor
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return descriptor


def _tile_for(descriptor: Any, device_type: str) -> int:
    from spandrel import ModelTiling

    # Models that tile inside (or must see the whole image) get it whole: 0 means untiled.
    return 0 if descriptor.tiling == ModelTiling.INTERNAL else TILE.get(device_type, TILE["cpu"])


def run_tiled(descriptor: Any, image: Image.Image, *, tile: int, overlap: int = OVERLAP) -> Image.Image:
    """One pass of the model over `image`, `tile` px of input at a time (0: the whole image)."""
    import torch

    pixels = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)[None]  # uint8, CPU
    _, _, height, width = pixels.shape
    scale = int(descriptor.scale)
    out = np.empty((height * scale, width * scale, 3), dtype=np.uint8)
    step = tile or max(height, width)
    margin = overlap if tile else 0
    for top in range(0, height, step):
        for left in range(0, width, step):
            bottom, right = min(top + step, height), min(left + step, width)
            # The tile with its context, clipped to the image.
            y0, x0 = max(0, top - margin), max(0, left - margin)
            y1, x1 = min(height, bottom + margin), min(width, right + margin)
            result = _model(descriptor, pixels[:, :, y0:y1, x0:x1])
            core = result[:, (top - y0) * scale : (bottom - y0) * scale, (left - x0) * scale : (right - x0) * scale]
            out[top * scale : bottom * scale, left * scale : right * scale] = core.permute(1, 2, 0).numpy()
    return Image.fromarray(out)


def _model(descriptor: Any, patch: Any) -> Any:
    """The model on one uint8 patch (1, 3, h, w): a uint8 (3, h*scale, w*scale) on the CPU. The
    patch is padded to the architecture's size requirements and the padding cut off after."""
    import torch

    _, _, h, w = patch.shape
    x = patch.to(descriptor.device, descriptor.dtype) / 255
    x = _pad(x, descriptor.size_requirements)
    with torch.inference_mode():
        y = descriptor(x)
    scale = int(descriptor.scale)
    y = y[0, :, : h * scale, : w * scale].clamp(0, 1)
    return (y.float() * 255).round().to(torch.uint8).cpu()


def _pad(x: Any, requirements: Any) -> Any:
    """Right and bottom padding up to `minimum` / `multiple_of` / square: reflected where the patch
    is large enough, the edge repeated for the rest (as spandrel does)."""
    import torch.nn.functional as F

    _, _, h, w = x.shape
    pad_w, pad_h = requirements.get_padding(w, h)
    if not (pad_w or pad_h):
        return x
    reflect_w, reflect_h = min(pad_w, w - 1), min(pad_h, h - 1)
    x = F.pad(x, (0, reflect_w, 0, reflect_h), mode="reflect")
    return F.pad(x, (0, pad_w - reflect_w, 0, pad_h - reflect_h), mode="replicate")


def _peak_start(device: Any) -> int:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _peak_mb(device: Any, before: int) -> float:
    """CUDA: the most the stage had allocated on the card. CPU: how far it raised the process's
    peak resident memory (0 when it stayed under an earlier peak, e.g. a bigger earlier job)."""
    import torch

    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, 1)


def clear_cache() -> None:
    with _lock:
        _cache.clear()
