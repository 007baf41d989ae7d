"""Does a LoRA run forget what the base model draws? Its samples at the fixed prompts are compared
with the base model's own (the run samples them before its first step, when the adapter adds
nothing): palette compliance against the asset type's palette, and the ink's colour (the mean
CIELAB of the pixels furthest from the background), per prompt. A style LoRA should change shapes,
not the brand's colours; when the colours move the run page says so.

Worker-only (numpy, colour-science), as finishing is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..finishing.colours import delta_e, hex_lab, to_lab
from ..finishing.palette import compliance
from ..finishing.plan import Palette

INK_DISTANCE = 12.0  # ΔE2000 from the background past which a pixel is ink
COMPLIANCE_DROP = 0.15  # a fall in mean compliance (share of pixels) worth a warning
COLOUR_SHIFT = 15.0  # a mean ΔE2000 between the ink colours of base and run samples worth one


def look(image: Image.Image, palette: Palette | None) -> dict[str, Any]:
    """What the drift check keeps of one sample: its compliance and its ink colour (Lab)."""
    rgb = np.asarray(image.convert("RGB"))
    lab = to_lab(rgb.reshape(-1, 3))
    background = hex_lab([palette.background])[0] if palette and palette.background else np.median(lab, axis=0)
    distance = delta_e(lab, background)
    ink = distance > INK_DISTANCE
    if ink.any():  # its core: anti-aliased edges, a larger share of thin strokes, would pale it
        ink &= distance >= np.median(distance[ink])
    ink = lab[ink]
    return {
        "compliance": round(compliance(image, palette), 4) if palette else None,
        "ink_lab": [round(float(v), 2) for v in ink.mean(axis=0)] if len(ink) else None,
    }


def drift(base: list[dict[str, Any]], now: list[dict[str, Any]]) -> dict[str, float] | None:
    """Mean compliance of base and run samples, and the mean ink colour shift, over the prompts
    both have; None when nothing is comparable."""
    pairs = list(zip(base, now, strict=False))
    shifts = [
        float(delta_e(np.array(a["ink_lab"]), np.array(b["ink_lab"])))
        for a, b in pairs
        if a.get("ink_lab") and b.get("ink_lab")
    ]
    scored = [(a["compliance"], b["compliance"]) for a, b in pairs if a.get("compliance") is not None]
    if not shifts and not scored:
        return None
    result = {"colour_shift": round(sum(shifts) / len(shifts), 2) if shifts else 0.0}
    if scored:
        result["compliance_base"] = round(sum(a for a, _ in scored) / len(scored), 4)
        result["compliance_now"] = round(sum(b for _, b in scored) / len(scored), 4)
    return result


def drift_note(step: int, found: dict[str, float] | None) -> str:
    """The run page's warning when the samples at `step` have drifted from the base's, else ""."""
    if not found:
        return ""
    findings = []
    if "compliance_base" in found and found["compliance_base"] - found["compliance_now"] > COMPLIANCE_DROP:
        findings.append(f"palette compliance {found['compliance_base']:.0%} → {found['compliance_now']:.0%}")
    if found["colour_shift"] > COLOUR_SHIFT:
        findings.append(f"the ink's colour moved by ΔE {found['colour_shift']:.0f} on average")
    if not findings:
        return ""
    return (
        f"At step {step} the samples drift from the base model's at the same prompts: {' and '.join(findings)}. "
        "The LoRA may be overwriting what the base draws (its colours): try fewer steps, a lower learning "
        "rate or rank, or captions that name each image's colours."
    )
