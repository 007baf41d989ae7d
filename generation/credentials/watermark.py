"""An invisible watermark in the pixels: the first 32 bits of the image's id, spread over the
whole picture, so a file that lost its manifest (re-saved, converted, resized to half) still
names the image it came from.

Not invisible-watermark's DWT-DCT, which diffusers uses for SDXL: on studio images its marks
lost bits through a plain PNG round trip and a resize to half (measured in
docs/content-credentials.md), and the package imports torch and requires the GUI build of OpenCV.
This is a spread-spectrum mark in the same transform's coarsest band: the Haar DWT's level-3
approximation, i.e. the mean of each 8×8 cell. Each cell carries one bit, ± 2 grey levels
times a fixed ±1 chip; every bit owns about 1/32 of the cells, scattered by a hash. Reading
correlates each bit's cells with their chips after taking away each cell's neighbourhood (the
picture): a z-score per bit, whose mean size is about 0.8 where there is no mark (the mean |z|
of noise) and far above FOUND where there is. Numpy only: the web process reads marks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
from PIL import Image

BITS = 32
CELL = 8  # pixels: one cell of the Haar level-3 approximation
AMPLITUDE = 2  # grey levels added to or taken from a cell's pixels
CAP = 3.0  # a cell's residual beyond this is the picture (an edge), not the mark
MIN_SIDE = 256  # smaller images have too few cells to carry 32 bits: they are not marked
FOUND = 2.5  # mean |z| over the bits at or above which a mark is read
KEY = 0x5EEDB5A1  # fixes the chips and the bit of each cell: marks are read with the same


@dataclass(frozen=True)
class Mark:
    short_id: str  # 8 hex digits: the first 32 bits of the image's id
    strength: float  # mean |z| over the bits


def short_id(image_id: uuid.UUID) -> str:
    return image_id.hex[:8]


def embed(image: Image.Image, image_id: uuid.UUID) -> Image.Image:
    """The image with its short id in the pixels (alpha untouched); an image too small for the
    mark, or not RGB(A), comes back as it was."""
    if image.mode not in ("RGB", "RGBA") or min(image.size) < MIN_SIDE:
        return image
    pixels = np.asarray(image).astype(np.int16)
    pixels[..., :3] += _pattern(image.height, image.width, short_id(image_id))[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode=image.mode)


def detect(image: Image.Image) -> Mark | None:
    """The mark in a picture, as stored or resized to half, or None when there is none."""
    rgb = image.convert("RGB")
    for scale in (1, 2):  # a half-size copy is read on the grid it was marked on
        candidate = rgb if scale == 1 else rgb.resize((rgb.width * 2, rgb.height * 2), Image.Resampling.BICUBIC)
        if min(candidate.size) < MIN_SIDE:
            continue
        z = _zscores(np.asarray(candidate, dtype=np.float32).mean(axis=2))
        if (strength := float(np.abs(z).mean())) >= FOUND:
            bits = "".join("1" if value > 0 else "0" for value in z)
            return Mark(short_id=f"{int(bits, 2):08x}", strength=round(strength, 1))
    return None


def _pattern(height: int, width: int, payload: str) -> np.ndarray:
    rows, cols = height // CELL, width // CELL
    bit, chip = _layout(rows, cols)
    value = int(payload, 16)
    signs = np.array([1 if value >> (BITS - 1 - i) & 1 else -1 for i in range(BITS)], dtype=np.int16)
    cells = (AMPLITUDE * chip * signs[bit]).astype(np.int16)
    pattern = np.zeros((height, width), dtype=np.int16)
    pattern[: rows * CELL, : cols * CELL] = cells.repeat(CELL, axis=0).repeat(CELL, axis=1)
    return pattern


def _zscores(luma: np.ndarray) -> np.ndarray:
    rows, cols = luma.shape[0] // CELL, luma.shape[1] // CELL
    cells = luma[: rows * CELL, : cols * CELL].reshape(rows, CELL, cols, CELL).mean(axis=(1, 3))
    residual = np.clip(cells - _neighbourhood(cells), -CAP, CAP)
    bit, chip = _layout(rows, cols)
    sums = np.bincount(bit.ravel(), weights=(chip * residual).ravel(), minlength=BITS)
    counts = np.bincount(bit.ravel(), minlength=BITS)
    return np.asarray(sums / ((residual.std() + 1e-9) * np.sqrt(np.maximum(counts, 1))))


def _neighbourhood(cells: np.ndarray) -> np.ndarray:
    """The mean of each cell's 3×3 neighbourhood (edges mirrored)."""
    padded = np.pad(cells, 1, mode="reflect")
    rows, cols = cells.shape
    total = np.zeros_like(cells)
    for r in range(3):
        for c in range(3):
            total += padded[r : r + rows, c : c + cols]
    return total / 9.0


def _layout(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Which bit each cell carries and its chip (±1): a hash of the cell's index, the same on
    every machine and numpy version (no random generator whose stream could change)."""
    h = np.arange(rows * cols, dtype=np.uint64) * np.uint64(2654435761) + np.uint64(KEY)
    h &= np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x2C1B3C6D)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(12)
    bit = (h % np.uint64(BITS)).astype(np.int64).reshape(rows, cols)
    chip = np.where((h >> np.uint64(20)) & np.uint64(1), 1, -1).astype(np.int16).reshape(rows, cols)
    return bit, chip
