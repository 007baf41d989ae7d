"""The demo brand kit: a palette, and flat icons in it, captioned "a flat {colour} {subject} icon".

It stands in for a design team's curated assets so the offline studio has something on-brand to
learn from, and it gives a way to score what a model draws: colour against the palette, shape by
the nearest reference glyph. The demo model learns Fluent filled glyphs (`glyph_kit`); six shapes
drawn by code (`draw_icon`) are test material that needs no icon package.
"""

from __future__ import annotations

import base64
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from . import glyphs

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
    shape: str  # the subject: a code-drawn shape or a Fluent glyph's subject

    @property
    def caption(self) -> str:
        return caption(self.colour, self.shape)


# --- demo brand v2: Fluent filled glyphs (generation/devtools/glyphs.py renders them)

# Subject -> Fluent icon name, in the order the kit takes them: bold, distinct outer shapes first.
# Each one's silhouette overlaps every earlier one's by less than 0.8 IoU, so a perfect drawing
# is never nearest to another subject's reference (scripts/demo_model_quality.py judges that way).
GLYPH_SUBJECTS: dict[str, str] = {
    "person": "person",
    "phone": "phone",
    "key": "key",
    "headphones": "headphones",
    "umbrella": "umbrella",
    "trophy": "trophy",
    "wrench": "wrench",
    "moon": "weather_moon",
    "sun": "weather_sunny",
    "airplane": "airplane",
    "music note": "music_note_1",
    "shield": "shield",
    "heart": "heart",
    "star": "star",
    "cloud": "cloud",
    "lightbulb": "lightbulb",
    "rocket": "rocket",
    "calendar": "calendar",
    "home": "home",
    "mail": "mail",
    "lock": "lock_closed",
    "camera": "camera",
    "bell": "alert",
    "gift": "gift",
    "flag": "flag",
    "bookmark": "bookmark",
    "chat": "chat",
    "cart": "cart",
    "folder": "folder",
    "document": "document",
    "globe": "globe",
    "puzzle piece": "puzzle_piece",
    "crown": "crown",
    "bug": "bug",
    "fire": "fire",
    "lightning": "flash",
    "pin": "pin",
    "location": "location",
    "car": "vehicle_car",
    "glasses": "glasses",
    "graduation cap": "hat_graduation",
    "apple": "food_apple",
    "beaker": "beaker",
    "paint brush": "paint_brush",
    "pen": "pen",
    "scissors": "cut",
    "ticket": "ticket_diagonal",
    "video": "video",
    "headset": "headset",
    "keyboard": "keyboard",
    "microphone": "mic",
    "printer": "print",
    "briefcase": "briefcase",
    "building": "building",
    "shopping bag": "shopping_bag",
    "wallet": "wallet",
    "tag": "tag",
    "people": "people",
    "robot": "bot",
    "cat": "animal_cat",
    "dog": "animal_dog",
    "rabbit": "animal_rabbit",
    "turtle": "animal_turtle",
    "snowflake": "weather_snowflake",
    "thunderstorm": "weather_thunderstorm",
    "gavel": "gavel",
    "hand": "hand_right",
    "guitar": "guitar",
    "soccer ball": "sport_soccer",
    "basketball": "sport_basketball",
    "dumbbell": "dumbbell",
    "target": "target",
    "hourglass": "hourglass",
    "bed": "bed",
    "tent": "tent",
    "coffee": "drink_coffee",
    "wine glass": "drink_wine",
    "beer": "drink_beer",
    "paw print": "animal_paw_print",
    "balloon": "balloon",
    "brain": "brain",
    "eye": "eye",
    "triangle": "triangle",
    "eyedropper": "eyedropper",
    "flashlight": "flashlight",
    "battery": "battery_10",
    "box": "box",
    "cookie": "cookies",
    "gas pump": "gas_pump",
    "gamepad": "xbox_controller",
    "ribbon": "ribbon",
    "megaphone": "megaphone",
    "book": "book",
    "bowl": "bowl_salad",
    "broom": "broom",
    "trash can": "delete",
    "feather": "leaf_one",
    "fish": "food_fish",
    "food": "food",
    "paint bucket": "paint_bucket",
    "plug": "plug_connected",
    "run": "run",
    "ruler": "ruler",
    "savings": "savings",
    "send": "send",
    "settings": "settings",
    "sparkle": "sparkle",
    "stethoscope": "stethoscope",
    "storage": "storage",
    "toolbox": "toolbox",
    "truck": "vehicle_truck",
    "bus": "vehicle_bus",
    "ship": "vehicle_ship",
    "bicycle": "vehicle_bicycle",
    "water": "water",
    "weather partly cloudy": "weather_partly_cloudy_day",
    "wifi": "wifi_1",
    "pizza": "food_pizza",
    "cake": "food_cake",
    "egg": "food_egg",
    "carrot": "food_carrot",
    "hammer": "wrench_screwdriver",
    "leaf": "leaf_two",
    "mountain": "mountain_location_bottom",
}
REFERENCE_SIDE = 32  # the side of the fitted masks a drawing is compared with

# Fixed prompts for figures that need a few (scripts/finishing_report.py): 6 subjects x 4 colours.
DEMO_PROMPTS = [
    (colour, subject, caption(colour, subject)) for subject in list(GLYPH_SUBJECTS)[:6] for colour in PALETTE
]


def glyph_kit(
    subjects: list[str], per_pair: int, *, size: int = 64, seed: int = 0, style: str = "filled"
) -> list[KitImage]:
    """`per_pair` jittered renders of each subject's glyph (filled or regular) in each brand colour.
    A subject with no glyph fails the build naming it; a glyph that does not render is left out (warned)."""
    unknown = [s for s in subjects if s not in GLYPH_SUBJECTS]
    if unknown:
        raise glyphs.GlyphError(f"No Fluent glyph is known for the subject(s) {', '.join(map(repr, unknown))}.")
    rng = random.Random(seed)
    alphas = {s: glyphs.coverage(GLYPH_SUBJECTS[s], style) for s in subjects}
    drawable = [s for s in subjects if alphas[s] is not None]
    return [
        KitImage(glyphs.paint(alphas[s], PALETTE[colour], BACKGROUND, size=size, rng=rng), colour, s)  # type: ignore[arg-type]
        for _ in range(per_pair)
        for s in drawable
        for colour in PALETTE
    ]


def fitted_mask(mask: np.ndarray, side: int = REFERENCE_SIDE) -> np.ndarray | None:
    """A mask cropped to its bounding box, padded to a square (aspect kept) and resized: what
    two drawings of the same glyph at any size and position have in common. None when empty."""
    rows, cols = np.where(mask)
    if not len(rows):
        return None
    crop = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = crop.shape
    side_in = max(h, w)
    top, left = (side_in - h) // 2, (side_in - w) // 2
    square = np.zeros((side_in, side_in), dtype=np.uint8)
    square[top : top + h, left : left + w] = crop * 255
    return np.asarray(Image.fromarray(square).resize((side, side), Image.Resampling.BILINEAR)) > 127


def glyph_references(subjects: list[str], style: str = "filled") -> dict[str, np.ndarray]:
    """Each subject's reference mask, from its glyph drawn large and thresholded at half cover."""
    references = {}
    for subject in subjects:
        alpha = glyphs.coverage(GLYPH_SUBJECTS[subject], style)
        mask = fitted_mask(alpha > 0.5) if alpha is not None else None
        if mask is not None:
            references[subject] = mask
    return references


def foreground(image: Image.Image) -> np.ndarray:
    """Pixels clearly away from the kit's background (a drawing's ink)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    return np.linalg.norm(pixels - np.array(BACKGROUND, dtype=np.float32), axis=-1) > 60


def without_specks(mask: np.ndarray) -> np.ndarray:
    """The mask less the specks a model leaves: pieces under 1 % of the ink, and pieces under
    10 % that touch the image's edge (a glyph sits inside its padding; the VAE's corner
    artefacts do not); never the largest. A drawing's bounding box is then the glyph's."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(areas.argmax()) + 1
    height, width = mask.shape
    keep = np.zeros(count, dtype=bool)
    for label in range(1, count):
        x, y, w, h, area = stats[label]
        edge = x == 0 or y == 0 or x + w == width or y + h == height
        share = area / areas.sum()
        keep[label] = label == largest or (share >= 0.01 and not (edge and share < 0.1))
    return keep[labels]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@dataclass(frozen=True)
class GlyphVerdict:
    colour: str | None  # the palette colour the ink is closest to
    nearest: str | None  # the subject whose reference the ink's fitted mask overlaps most
    ious: dict[str, float]  # IoU with every reference
    ink: float  # share of the image that is ink
    probe: np.ndarray | None = None  # the ink, cleaned of specks and fitted (what was compared)


def judge_glyph(image: Image.Image, references: dict[str, np.ndarray]) -> GlyphVerdict:
    ink = foreground(image)
    share = float(ink.mean())
    if share < 0.01:
        return GlyphVerdict(None, None, {}, share)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    mean = pixels[ink].mean(axis=0)
    colour = min(PALETTE, key=lambda name: float(np.linalg.norm(mean - np.array(PALETTE[name]))))
    probe = fitted_mask(without_specks(ink))
    assert probe is not None
    ious = {subject: iou(probe, reference) for subject, reference in references.items()}
    return GlyphVerdict(colour, max(ious, key=ious.__getitem__), ious, share, probe)


KIT_CARD = "demo-kit.json"  # beside a trained demo model's model_index.json (demo_model.write_kit_card)


def read_kit_card(folder: Path) -> dict | None:
    """A demo model's card (its subjects, their reference masks, the glyphs' source), or None."""
    path = Path(folder) / KIT_CARD
    return json.loads(path.read_text()) if path.is_file() else None


def card_references(card: dict) -> dict[str, np.ndarray]:
    side = card["reference_side"]
    return {
        subject: np.unpackbits(np.frombuffer(base64.b64decode(packed), dtype=np.uint8))[: side * side]
        .reshape(side, side)
        .astype(bool)
        for subject, packed in card["references"].items()
    }
