"""A library item's dominant colours, found once at approval with Pillow (no numpy: the web
process runs this), and what a search by colour asks for: a hex, or a named colour.

Colours compare in CIELAB by plain Euclidean distance (CIE76 ΔE): enough to tell "blue" from
"teal", and a sum of squares the database computes, so a search reads no image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

from PIL import Image, UnidentifiedImageError

from ..finishing.validators import HEX, hex_to_rgb
from ..models import GeneratedImage
from ..stored import MissingFile, opened

log = logging.getLogger(__name__)

SAMPLE_SIDE = 96  # pixels a side the image is reduced to before counting its colours
MOST_COLOURS = 5
LEAST_SHARE = 0.03  # a colour on fewer of the opaque pixels than this is detail, not a colour of the image
# How far (ΔE76) a library colour may be from the one searched for: a hex asks for close shades,
# a name for the colours people call by it.
HEX_RADIUS = 15.0
NAME_RADIUS = 30.0
# Median cut splits one flat colour into shades (anti-aliasing, gradients); shades this close (ΔE76)
# are one colour of the image, counted together under the commonest.
MERGE_RADIUS = 10.0

NAMED = {
    "black": "#000000",
    "white": "#ffffff",
    "grey": "#808080",
    "gray": "#808080",
    "red": "#d13438",
    "orange": "#f7630c",
    "yellow": "#fde300",
    "green": "#107c10",
    "teal": "#038387",
    "blue": "#0f6cbd",
    "navy": "#1b2a5b",
    "purple": "#8764b8",
    "pink": "#e43ba6",
    "brown": "#8e562e",
}


@dataclass(frozen=True)
class Swatch:
    hex: str
    share: float
    lab: tuple[float, float, float]


@dataclass(frozen=True)
class ColourQuery:
    hex: str
    lab: tuple[float, float, float]
    radius: float


def to_lab(hex_colour: str) -> tuple[float, float, float]:
    """sRGB (D65) to CIELAB."""
    r, g, b = (_linear(channel / 255) for channel in hex_to_rgb(hex_colour))
    x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047
    y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
    z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883
    fx, fy, fz = _f(x), _f(y), _f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def _linear(value: float) -> float:
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def _f(t: float) -> float:
    return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29


def parse_colour(text: str) -> ColourQuery:
    """What a search asks for: "#0f6cbd", "0f6cbd", "#fff" or a name ("blue"); ValueError says why not."""
    value = text.strip().lower()
    if value in NAMED:
        return ColourQuery(NAMED[value], to_lab(NAMED[value]), NAME_RADIUS)
    value = "#" + value.removeprefix("#")
    if len(value) == 4:
        value = "#" + "".join(digit * 2 for digit in value[1:])
    if not HEX.fullmatch(value):
        names = ", ".join(sorted(set(NAMED) - {"gray"}))
        raise ValueError(f"{text[:40]!r} is not a colour: give a hex like #0f6cbd, or one of {names}.")
    return ColourQuery(value, to_lab(value), HEX_RADIUS)


def dominant_colours(image: GeneratedImage) -> list[Swatch]:
    """The few colours most of the finished image's opaque pixels have (its thumbnail, when it has
    one, is the same picture, smaller); [] when no file can be read, logged: an approval does not
    wait on a missing file, the item is then found by everything but its colour."""
    field = image.thumbnail or image.file
    try:
        with opened(field, "This image") as source, Image.open(source) as picture:
            return _swatches(picture)
    except (MissingFile, OSError, UnidentifiedImageError, ValueError) as exc:
        log.warning("Image %s: no colours recorded for the library (%s)", image.pk, exc)
        return []


def _swatches(picture: Image.Image) -> list[Swatch]:
    rgba = picture.convert("RGBA")
    rgba.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE))
    data = rgba.tobytes()  # R, G, B, A, R, ...
    opaque = [(data[i], data[i + 1], data[i + 2]) for i in range(0, len(data), 4) if data[i + 3] >= 128]
    if not opaque:
        return []
    flat = Image.new("RGB", (len(opaque), 1))
    flat.putdata(opaque)
    counts = flat.quantize(colors=MOST_COLOURS * 2, method=Image.Quantize.MEDIANCUT).convert("RGB").getcolors()
    merged: list[tuple[str, tuple[float, float, float], int]] = []
    for count, rgb in sorted(counts or [], reverse=True):
        hex_colour = "#" + "".join(f"{int(channel):02x}" for channel in cast(tuple[int, int, int], rgb))
        lab = to_lab(hex_colour)
        near = next((i for i, (_, seen, _) in enumerate(merged) if _distance(lab, seen) < MERGE_RADIUS), None)
        if near is None:
            merged.append((hex_colour, lab, count))
        else:
            kept, seen, total = merged[near]
            merged[near] = (kept, seen, total + count)
    found = [
        Swatch(hex_colour, round(count / len(opaque), 4), lab)
        for hex_colour, lab, count in sorted(merged, key=lambda m: -m[2])
        if count / len(opaque) >= LEAST_SHARE
    ]
    return found[:MOST_COLOURS]


def _distance(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5
