"""The demo brand kit: a palette and flat icons drawn by code, captioned.

It stands in for a design team's curated assets so the offline studio has something on-brand
to learn from, and it gives a way to score what a model draws: colour against the palette,
shape against the kit's own shapes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

BACKGROUND = (246, 247, 249)
PALETTE: dict[str, tuple[int, int, int]] = {
    "blue": (15, 108, 189),
    "green": (16, 124, 16),
    "orange": (247, 99, 12),
    "purple": (135, 100, 184),
}
SHAPES = ("circle", "square", "triangle", "star", "heart", "plus")


def caption(colour: str, shape: str) -> str:
    return f"a flat {colour} {shape} icon"


# The fixed prompts the demo model is judged on (and the README's demo prompts).
DEMO_PROMPTS = [(colour, shape, caption(colour, shape)) for shape in SHAPES for colour in PALETTE]


def shape_polygon(shape: str, box: tuple[float, float, float, float]) -> list[list[tuple[float, float]]]:
    """The shape as polygons filling `box` (left, top, right, bottom)."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    cx, cy = left + w / 2, top + h / 2

    def at(fx: float, fy: float) -> tuple[float, float]:
        return left + fx * w, top + fy * h

    if shape == "circle":
        return [[(cx + w / 2 * math.cos(a), cy + h / 2 * math.sin(a)) for a in _angles(48)]]
    if shape == "square":
        return [[at(0, 0), at(1, 0), at(1, 1), at(0, 1)]]
    if shape == "triangle":
        return [[at(0.5, 0), at(1, 1), at(0, 1)]]
    if shape == "star":
        points = []
        for i in range(10):
            radius = 0.5 if i % 2 == 0 else 0.2
            angle = -math.pi / 2 + i * math.pi / 5
            points.append(at(0.5 + radius * math.cos(angle), 0.53 + radius * math.sin(angle)))
        return [points]
    if shape == "heart":
        points = []
        for a in _angles(64):
            x = 16 * math.sin(a) ** 3
            y = 13 * math.cos(a) - 5 * math.cos(2 * a) - 2 * math.cos(3 * a) - math.cos(4 * a)
            points.append(at(0.5 + x / 34, 0.45 - y / 32))
        return [points]
    if shape == "plus":
        t = 0.34
        return [[at(t, 0), at(1 - t, 0), at(1 - t, 1), at(t, 1)], [at(0, t), at(1, t), at(1, 1 - t), at(0, 1 - t)]]
    raise ValueError(f"unknown shape {shape!r}")


def _angles(n: int) -> list[float]:
    return [2 * math.pi * i / n for i in range(n)]


def draw_icon(colour: str, shape: str, *, size: int = 64, rng: random.Random | None = None) -> Image.Image:
    """One flat icon: the shape in a brand colour on the light background, with a little jitter."""
    rng = rng or random.Random(0)
    scale = 4  # draw large and shrink, for smooth edges
    canvas = Image.new("RGB", (size * scale, size * scale), BACKGROUND)
    extent = rng.uniform(0.55, 0.78) * size * scale
    cx = size * scale / 2 + rng.uniform(-0.06, 0.06) * size * scale
    cy = size * scale / 2 + rng.uniform(-0.06, 0.06) * size * scale
    box = (cx - extent / 2, cy - extent / 2, cx + extent / 2, cy + extent / 2)
    draw = ImageDraw.Draw(canvas)
    for polygon in shape_polygon(shape, box):
        draw.polygon(polygon, fill=PALETTE[colour])
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class KitImage:
    image: Image.Image
    colour: str
    shape: str

    @property
    def caption(self) -> str:
        return caption(self.colour, self.shape)


def demo_kit(per_pair: int = 40, *, size: int = 64, seed: int = 0) -> list[KitImage]:
    """`per_pair` jittered icons for every colour and shape (6 x 4 pairs)."""
    rng = random.Random(seed)
    return [
        KitImage(draw_icon(colour, shape, size=size, rng=rng), colour, shape)
        for _ in range(per_pair)
        for shape in SHAPES
        for colour in PALETTE
    ]


# --- scoring what a model drew


@dataclass(frozen=True)
class Verdict:
    on_palette: float  # share of pixels within a small distance of a palette colour or the background
    colour: str | None  # the palette colour the foreground is closest to
    shape: str | None  # the kit shape the foreground's outline matches best


ON_PALETTE_DISTANCE = 40  # RGB Euclidean distance


def judge(image: Image.Image) -> Verdict:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    references = np.array([BACKGROUND, *PALETTE.values()], dtype=np.float32)
    distances = np.linalg.norm(pixels[:, :, None, :] - references[None, None], axis=-1)
    on_palette = float((distances.min(axis=-1) <= ON_PALETTE_DISTANCE).mean())
    foreground = np.linalg.norm(pixels - np.array(BACKGROUND, dtype=np.float32), axis=-1) > 60
    if foreground.sum() < 0.02 * foreground.size:
        return Verdict(on_palette, None, None)
    mean = pixels[foreground].mean(axis=0)
    colour = min(PALETTE, key=lambda name: float(np.linalg.norm(mean - np.array(PALETTE[name]))))
    return Verdict(on_palette, colour, _closest_shape(foreground))


def _closest_shape(mask: np.ndarray) -> str:
    """The kit shape whose drawing, fitted to the same bounding box, overlaps the mask most (IoU)."""
    rows, cols = np.where(mask)
    crop = Image.fromarray(mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.uint8) * 255)
    probe = np.asarray(crop.resize((48, 48), Image.Resampling.BILINEAR)) > 127
    best, best_iou = SHAPES[0], -1.0
    for shape in SHAPES:
        template = Image.new("L", (48, 48), 0)
        draw = ImageDraw.Draw(template)
        for polygon in shape_polygon(shape, _tight_box(shape)):
            draw.polygon(polygon, fill=255)
        reference = np.asarray(template) > 127
        iou = float((probe & reference).sum() / max(1, (probe | reference).sum()))
        if iou > best_iou:
            best, best_iou = shape, iou
    return best


def _tight_box(shape: str) -> tuple[float, float, float, float]:
    """The box that makes the shape's own drawing touch all four edges of a 48x48 template."""
    xs, ys = zip(*[p for polygon in shape_polygon(shape, (0, 0, 1, 1)) for p in polygon], strict=True)
    sx, sy = 48 / (max(xs) - min(xs)), 48 / (max(ys) - min(ys))
    return (-min(xs) * sx, -min(ys) * sy, (1 - min(xs)) * sx, (1 - min(ys)) * sy)
