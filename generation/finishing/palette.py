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

COLOUR_STAND_INS = {"scipy", "matplotlib", "cycler", "mpl_toolkits"}  # what colour-science mocks when missing


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
        if name.split(".")[0] in COLOUR_STAND_INS and isinstance(module, mock.NonCallableMock):
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


# Pixels travel as one little-endian uint32 each, R | G << 8 | B << 16 (| A << 24): the bytes of Pillow's
# RGBX / RGBA, so reading and writing an image is one copy, and a colour is one integer to look up.


def has_alpha(image: Image.Image) -> bool:
    return image.mode in {"RGBA", "LA", "PA", "RGBa", "La"} or "transparency" in image.info


def image_words(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Each pixel's colour as a packed RGB uint32 (flat), and its alpha when the image has transparency."""
    if has_alpha(image):
        words = np.frombuffer(image.convert("RGBA").tobytes(), dtype="<u4")
        return words & 0xFFFFFF, (words >> 24).astype(np.uint8)
    return np.frombuffer(image.convert("RGBX").tobytes(), dtype="<u4") & 0xFFFFFF, None


def words_image(codes: np.ndarray, alpha: np.ndarray | None, size: tuple[int, int]) -> Image.Image:
    """The image back from packed RGB and an optional alpha: RGBA with alpha, RGB without."""
    if alpha is None:
        return Image.frombytes("RGB", size, codes.astype("<u4", copy=False).tobytes(), "raw", "RGBX")
    words = codes.astype("<u4") | (alpha.astype("<u4") << 24)
    return Image.frombytes("RGBA", size, words.tobytes(), "raw", "RGBA")


def pack(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 colours as packed uint32s."""
    rgb = rgb.astype(np.uint32)
    return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)


def unpack(codes: np.ndarray) -> np.ndarray:
    return np.stack([codes & 255, (codes >> 8) & 255, (codes >> 16) & 255], axis=-1).astype(np.uint8)


def distinct(codes: np.ndarray) -> np.ndarray:
    """The distinct packed colours, sorted: np.unique's answer through a 2**24 presence table, because
    sorting the 16 M pixels of a 4096 px image takes seconds and the table a tenth of one."""
    present = np.zeros(1 << 24, dtype=bool)
    present[codes] = True
    return np.flatnonzero(present).astype(np.uint32)


def lookup(codes: np.ndarray, values: np.ndarray, per_value: np.ndarray) -> np.ndarray:
    """Per pixel, the entry of `per_value` for its colour (`values` being the distinct colours), through a
    2**24 table: one gather instead of an index array plus another gather."""
    table = np.zeros((1 << 24, *per_value.shape[1:]), dtype=per_value.dtype)
    table[values] = per_value
    return table[codes]


# --- compliance


def compliance(image: Image.Image, palette: Palette) -> float:
    """Share (0..1) of pixels within the tolerance (ΔE2000) of a palette colour or the background.

    Fully transparent pixels count as background; partly transparent ones are judged on their colour.
    """
    codes, alpha = image_words(image)
    if codes.size == 0:
        return 1.0
    values = distinct(codes)
    names = references(palette)
    on_brand = np.zeros(1 << 24, dtype=bool)  # per packed colour: one lookup per pixel, no index array
    if names:
        distances = delta_e(to_lab(unpack(values))[:, None, :], hex_lab(names)[None, :, :])
        on_brand[values] = distances.min(axis=1) <= palette.tolerance
    pixels = on_brand[codes]
    if alpha is not None:
        pixels |= alpha.ravel() == 0
    return np.count_nonzero(pixels) / pixels.size


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
    names = references(palette)
    codes, alpha = image_words(image)
    if not names or codes.size == 0:
        return words_image(codes, alpha, image.size)
    values = distinct(codes)
    corrected = from_lab(_correct_lab(to_lab(unpack(values)), hex_lab(names), palette.tolerance))
    return words_image(lookup(codes, values, pack(corrected)), alpha, image.size)


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
