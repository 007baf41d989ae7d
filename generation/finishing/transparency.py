"""Transparent background: an alpha matte keyed on the asset type's background colour. Worker-only.

Keying is global (every pixel of the background colour goes, holes in a donut included) and works on the
image's unique colours, like the palette stage.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from generation.finishing.colours import colours_of, delta_e, image_words, pack, to_lab, unpack, words_image
from generation.finishing.validators import HEX, hex_to_rgb

# A colour whose pixels cover this share of the image, and which is clearly not background, is a solid
# foreground colour: edge pixels are read as mixes of it with the background.
SOLID_SHARE = 0.002
MAX_SOLIDS = 16
# How far (8-bit RGB levels) a colour may sit off the background→solid line and still be read as that mix:
# Lanczos resampling and rounding leave edge mixes a few levels off it.
EDGE_RESIDUAL = 12.0


def cut_out(image: Image.Image, background: str, tolerance: float) -> Image.Image:
    """RGBA with the background keyed out and edge pixels un-premultiplied (no halo of background colour).

    Alpha per colour, from its ΔE2000 distance d to the background:
    - d < tolerance / 2: 0 (background);
    - an anti-aliased mix of the background and a solid colour of the image (a colour on the line between
      them): its coverage, the position on that line. A distance ramp alone would make a half-covered edge
      pixel (d ≈ 25 against a blue) fully opaque and leave a light rim round every shape;
    - anything else: a smooth ramp from 0 at tolerance / 2 to 255 at 2 · tolerance.
    Then observed = α·fg + (1−α)·bg is solved for fg on partly transparent pixels.
    An alpha channel the image already has is kept (multiplied in).
    """
    if not HEX.fullmatch(background):
        raise ValueError(f"A transparent background needs the background colour (like #f6f7f9), not {background!r}.")
    codes, alpha_in = image_words(image)
    bg = np.array(hex_to_rgb(background), dtype=np.float64)
    values, index = colours_of(codes)
    colours = unpack(values)
    counts = np.bincount(index, minlength=len(values))
    distance = delta_e(to_lab(colours), to_lab(bg.astype(np.uint8)))

    alpha = _ramp(distance, tolerance / 2, 2 * tolerance)
    solid = (distance > 2 * tolerance) & (counts >= SOLID_SHARE * codes.size)
    solids = colours[solid][np.argsort(-counts[solid])][:MAX_SOLIDS].astype(np.float64)
    if len(solids):
        coverage, matched = _coverage(colours.astype(np.float64), bg, solids)
        alpha = np.where(matched, coverage, alpha)
    alpha[distance < tolerance / 2] = 0.0

    fg = pack(_unpremultiply(colours.astype(np.float64), bg, alpha))
    alpha_8 = np.rint(alpha * 255).astype(np.uint32)
    if alpha_in is None:  # one gather for colour and alpha together
        words = (fg | (alpha_8 << 24))[index]
        return Image.frombytes("RGBA", image.size, words.astype("<u4", copy=False).tobytes(), "raw", "RGBA")
    out_alpha = (alpha_8[index] * alpha_in // 255).astype(np.uint8)
    return words_image(fg[index], out_alpha, image.size)


def _ramp(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Smoothstep from 0 at `low` to 1 at `high`."""
    t = np.clip((x - low) / max(high - low, 1e-9), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _coverage(colours: np.ndarray, bg: np.ndarray, solids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per colour: its position on the nearest background→solid line (0 background, 1 solid), and whether
    it lies close enough to that line to be such a mix."""
    direction = solids - bg  # (S, 3)
    offset = colours - bg  # (U, 3)
    t = np.clip(offset @ direction.T / np.maximum((direction**2).sum(axis=1), 1e-9), 0.0, 1.0)  # (U, S)
    residual = np.linalg.norm(offset[:, None, :] - t[..., None] * direction[None], axis=-1)
    best = residual.argmin(axis=1)
    rows = np.arange(len(colours))
    return t[rows, best], residual[rows, best] <= EDGE_RESIDUAL


def _unpremultiply(colours: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """fg from observed = α·fg + (1−α)·bg, on partly transparent colours; others keep their colour."""
    fg = colours.copy()
    partial = (alpha > 0) & (alpha < 1)
    a = alpha[partial][:, None]
    fg[partial] = (colours[partial] - (1 - a) * bg) / a
    return np.clip(np.rint(fg), 0, 255).astype(np.uint8)
