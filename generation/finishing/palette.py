"""Palette compliance (the share of on-brand pixels) and palette correction, in CIELAB with ΔE2000.

Worker-only (numpy, colour-science). Everything is computed on an image's *unique* colours and mapped
back, because a flat icon of millions of pixels has only a few thousand colours: the anti-aliased mixes
of a handful of brand colours.
"""

from __future__ import annotations

import sys
import warnings
from types import ModuleType
from unittest import mock

import numpy as np
from PIL import Image

from generation.finishing.plan import Palette
from generation.finishing.validators import hex_to_rgb


def _import_colour() -> ModuleType:
    """colour-science, without the stand-ins it leaves behind.

    When SciPy or Matplotlib are missing (they are: we need neither), colour-science warns and puts
    MagicMocks in sys.modules under their names. Left there, they break whatever imports next and probes
    for those packages (diffusers' find_spec("matplotlib") raises "matplotlib.__spec__ is not set", and
    code that tries `import scipy` would get a mock). colour keeps its own references; we remove the mocks.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    for name, module in list(sys.modules.items()):
        if isinstance(module, mock.NonCallableMock):
            del sys.modules[name]
    return colour


colour = _import_colour()

# A colour beyond the tolerance moves toward the palette less the farther it is, and not at all beyond
# FAR_REACH × tolerance, so colours well away from it (a photo inset, a deliberate accent) stay as they were.
FAR_REACH = 2.0


# --- colour helpers shared by the stages


def references(palette: Palette) -> list[str]:
    """The palette's colours and its background (when it names one), without repeats, in order."""
    names = [*palette.colours, *([palette.background] if palette.background else [])]
    return list(dict.fromkeys(name.lower() for name in names))


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (..., 3) to CIELAB (D65)."""
    return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb.astype(np.float64) / 255.0))


def from_lab(lab: np.ndarray) -> np.ndarray:
    """CIELAB to sRGB uint8, clipped to the gamut (a Lab mix of two sRGB colours can fall just outside it)."""
    rgb = colour.XYZ_to_sRGB(colour.Lab_to_XYZ(lab))
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def delta_e(lab_a: np.ndarray, lab_b: np.ndarray) -> np.ndarray:
    return np.asarray(colour.difference.delta_E_CIE2000(lab_a, lab_b))


def hex_lab(names: list[str]) -> np.ndarray:
    return to_lab(np.array([hex_to_rgb(name) for name in names], dtype=np.uint8).reshape(-1, 3))


def unique_colours(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct colours of an (H, W, 3) uint8 array and, per pixel, the index of its colour.

    Same result as np.unique(packed, return_inverse=True) on RGB packed into uint32, but through a
    2**24 lookup table: sorting 16 M pixels of a 4096 px image takes seconds, the table a tenth of one.
    """
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    packed = packed.ravel()
    present = np.zeros(1 << 24, dtype=bool)
    present[packed] = True
    values = np.flatnonzero(present).astype(np.uint32)
    table = np.zeros(1 << 24, dtype=np.int32)
    table[values] = np.arange(values.size, dtype=np.int32)
    colours = np.stack([(values >> 16) & 255, (values >> 8) & 255, values & 255], axis=1).astype(np.uint8)
    return colours, table[packed]


def split_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB pixels and, for images with transparency, the alpha channel."""
    if image.mode == "RGB":
        return np.asarray(image), None
    if image.mode != "RGBA" and "transparency" not in image.info and image.mode not in {"LA", "PA"}:
        return np.asarray(image.convert("RGB")), None
    rgba = np.asarray(image.convert("RGBA"))
    return rgba[..., :3], rgba[..., 3]


# --- compliance


def compliance(image: Image.Image, palette: Palette) -> float:
    """Share (0..1) of pixels within the tolerance (ΔE2000) of a palette colour or the background.

    Fully transparent pixels count as background; partly transparent ones are judged on their colour.
    """
    rgb, alpha = split_alpha(image)
    if rgb.size == 0:
        return 1.0
    colours, inverse = unique_colours(rgb)
    names = references(palette)
    if names:
        distances = delta_e(to_lab(colours)[:, None, :], hex_lab(names)[None, :, :])
        on_brand = distances.min(axis=1) <= palette.tolerance
    else:
        on_brand = np.zeros(len(colours), dtype=bool)
    pixels = on_brand[inverse]
    if alpha is not None:
        pixels |= alpha.ravel() == 0
    return float(pixels.mean())


# --- correction


def correct(image: Image.Image, palette: Palette) -> Image.Image:
    """Move flat areas onto the palette while keeping anti-aliased edges soft.

    Per colour, in CIELAB, against the palette colours plus the background:
    - within the tolerance of a palette colour: that colour exactly;
    - within the tolerance of the segment between two palette colours (an edge's mix): the mix of those two,
      weighted by where the colour projects onto the segment, so edges stay smooth but hold only palette
      colours and their mixes (a mix that lands within the tolerance of an end becomes that end);
    - farther: blended toward the nearest such point, fully at the tolerance, fading smoothly to not at all
      at twice the tolerance, so off-palette detail is kept (mostly) as it was.
    The first two are fixed points, so correcting twice gives the same image (within sRGB rounding).
    """
    rgb, alpha = split_alpha(image)
    names = references(palette)
    if not names or rgb.size == 0:
        return image.copy()
    colours, inverse = unique_colours(rgb)
    corrected = from_lab(_correct_lab(to_lab(colours), hex_lab(names), palette.tolerance))
    out = corrected[inverse].reshape(rgb.shape)
    if alpha is not None:
        return Image.fromarray(np.dstack([out, alpha]), "RGBA")
    return Image.fromarray(out, "RGB")


def _correct_lab(lab: np.ndarray, refs: np.ndarray, tolerance: float) -> np.ndarray:
    target, distance = _nearest_on_segments(lab, refs)
    target = _snap_to_ends(target, refs, tolerance)
    snap_index, snap_distance = _nearest(lab, refs)
    out = lab.copy()
    far = distance > tolerance
    fade = np.clip((distance[far] - tolerance) / ((FAR_REACH - 1) * tolerance), 0.0, 1.0)
    weight = 1 - fade * fade * (3 - 2 * fade)
    out[far] = lab[far] + weight[:, None] * (target[far] - lab[far])
    out[~far] = target[~far]
    close = snap_distance <= tolerance
    out[close] = refs[snap_index[close]]
    return out


def _nearest(lab: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distances = delta_e(lab[:, None, :], refs[None, :, :])
    index = distances.argmin(axis=1)
    return index, distances[np.arange(len(lab)), index]


def _nearest_on_segments(lab: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The closest point on any segment between two palette colours (or on a colour itself, for one colour),
    found in Lab Euclidean (cheap), then its ΔE2000 distance."""
    pairs = [(i, j) for i in range(len(refs)) for j in range(i + 1, len(refs))] or [(0, 0)]
    a = refs[[i for i, _ in pairs]][None, :, :]  # (1, P, 3)
    b = refs[[j for _, j in pairs]][None, :, :]
    ab = b - a
    length = np.maximum((ab**2).sum(axis=-1), 1e-12)
    t = np.clip(((lab[:, None, :] - a) * ab).sum(axis=-1) / length, 0.0, 1.0)  # (U, P)
    points = a + t[..., None] * ab  # (U, P, 3)
    best = ((lab[:, None, :] - points) ** 2).sum(axis=-1).argmin(axis=1)
    target = points[np.arange(len(lab)), best]
    return target, delta_e(lab, target)


def _snap_to_ends(points: np.ndarray, refs: np.ndarray, tolerance: float) -> np.ndarray:
    index, distance = _nearest(points, refs)
    close = distance <= tolerance
    points = points.copy()
    points[close] = refs[index[close]]
    return points
