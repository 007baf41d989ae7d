"""The palette stage's colour arithmetic, on CIELAB arrays of distinct colours: which palette reference
each colour is nearest (ΔE2000) and whether it is within the tolerance, and where correction moves it.
Worker-only. `table` applies these to an image's colours, once per colour per worker."""

from __future__ import annotations

import numpy as np

from generation.finishing.colours import delta_e, to_lab_float

# A colour beyond the tolerance moves toward the palette less the farther it is, and not at all beyond
# FAR_REACH × tolerance, so colours well away from it (a photo inset, a deliberate accent) stay as they were.
FAR_REACH = 2.0
SEGMENT_ROWS = 1 << 21  # colours × segments per step of the segment search: bounds its memory (~150 MB)


def judge_lab(lab: np.ndarray, refs: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Per colour: the index of its nearest reference by ΔE2000 (uint8), and whether it is within the
    tolerance of it."""
    if not len(refs):
        return np.zeros(len(lab), dtype=np.uint8), np.zeros(len(lab), dtype=bool)
    distances = delta_e(lab[:, None, :], refs[None, :, :])
    nearest = distances.argmin(axis=1)
    return nearest.astype(np.uint8), distances[np.arange(len(lab)), nearest] <= tolerance


def correct_colours(
    rgb: np.ndarray,
    lab: np.ndarray,
    refs: tuple[np.ndarray, np.ndarray],
    tolerance: float,
    nearest: np.ndarray,
    close: np.ndarray,
) -> np.ndarray:
    """Corrected colours as sRGB floats (see palette.correct). `rgb`, `lab`: the colours; `refs`: the
    references in sRGB and in Lab; `nearest`, `close`: each colour's nearest reference and whether it
    is within the tolerance of it (`judge_lab`: the score already knows them).

    An edge's mix of two colours is a point on the straight line between them in sRGB, because that is
    how anti-aliasing and alpha compositing blend (in gamma-encoded sRGB), and what the transparent
    background stage reads back into coverage: a mix placed on a Lab segment instead sits up to 40
    levels off that line and comes out as a light, opaque rim round the cut-out shape."""
    refs_rgb, refs_lab = refs
    out = refs_rgb[nearest].astype(np.float64)  # within the tolerance: the palette colour exactly
    rest = np.flatnonzero(~close)
    pairs = max(1, len(refs_rgb) * (len(refs_rgb) - 1) // 2)
    step = max(1024, SEGMENT_ROWS // pairs)
    for start in range(0, rest.size, step):
        rows = rest[start : start + step]
        out[rows] = _toward_segments(rgb[rows], lab[rows], refs_rgb, refs_lab, tolerance)
    return out


def _toward_segments(
    rgb: np.ndarray, lab: np.ndarray, refs_rgb: np.ndarray, refs_lab: np.ndarray, tolerance: float
) -> np.ndarray:
    """Colours beyond the tolerance of every reference: onto the nearest mix of two, or toward it."""
    target, ends = _nearest_on_segments(rgb, refs_rgb)
    distance = delta_e(lab, to_lab_float(target))
    out = rgb.astype(np.float64)  # beyond FAR_REACH × tolerance: as it was
    moved = distance < FAR_REACH * tolerance
    target = _snap_to_ends(target[moved], ends[moved], refs_rgb, refs_lab, tolerance)
    fade = np.clip((distance[moved] - tolerance) / ((FAR_REACH - 1) * tolerance), 0.0, 1.0)
    weight = 1 - fade * fade * (3 - 2 * fade)  # 1 within the tolerance of the segment, 0 at FAR_REACH
    out[moved] = out[moved] + weight[:, None] * (target - out[moved])
    return out


def _nearest_on_segments(rgb: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The closest point (sRGB Euclidean) on any segment between two references (on the reference
    itself, for one), and the indices of that segment's two ends."""
    pairs = np.array([(i, j) for i in range(len(refs)) for j in range(i + 1, len(refs))] or [(0, 0)])
    a = refs[pairs[:, 0]][None, :, :].astype(np.float64)  # (1, P, 3)
    ab = refs[pairs[:, 1]][None, :, :] - a
    length = np.maximum((ab**2).sum(axis=-1), 1e-12)
    colours = rgb[:, None, :].astype(np.float64)
    t = np.clip(((colours - a) * ab).sum(axis=-1) / length, 0.0, 1.0)  # (U, P)
    points = a + t[..., None] * ab  # (U, P, 3)
    best = ((colours - points) ** 2).sum(axis=-1).argmin(axis=1)
    return points[np.arange(len(rgb)), best], pairs[best]


def _snap_to_ends(
    points: np.ndarray, ends: np.ndarray, refs_rgb: np.ndarray, refs_lab: np.ndarray, tolerance: float
) -> np.ndarray:
    """Each point, a mix of its segment's two ends (`ends`: (U, 2) indices), becomes the nearer end when
    within the tolerance of it (ΔE2000): an edge's mix that close to a colour is that colour."""
    distances = delta_e(to_lab_float(points)[:, None, :], refs_lab[ends])  # (U, 2)
    index = distances.argmin(axis=1)
    rows = np.arange(len(points))
    close = distances[rows, index] <= tolerance
    points = points.copy()
    points[close] = refs_rgb[ends[rows, index][close]]
    return points
