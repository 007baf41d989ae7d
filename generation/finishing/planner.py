"""Makes a submission's finishing plan (`plan.Plan`): what the asset type, the tier and the model make of it.

Django-aware (it reads the Upscaler registry and settings) but web-safe: no numpy, no torch.
The studio form, the API (through the form) and `jobs.recipe.resolve_params` all go through
`plan_for`, so a size the finishing cannot make is refused the same way everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError

from ..engine.families import has_img2img
from ..models import QUALITY, Quality, Upscaler
from .plan import Palette, Plan, UpscalerRef

if TYPE_CHECKING:
    from ..models import AssetPreset, ImageModel

NO_UPSCALER = "No upscaler installed: Lanczos"


def no_img2img_note(model: ImageModel) -> str:
    return f"{model.name}'s family has no img2img: no refiner pass"


def plan_for(preset: AssetPreset, model: ImageModel, quality: str, width: int, height: int) -> Plan:
    """The plan for `width`×`height` (the size rendered) at `quality`; ValidationError when the
    finished image would be larger than STUDIO_MAX_OUTPUT_SIDE."""
    tier = QUALITY[Quality(quality)]
    upscale = tier.upscale if preset.use_upscaler else 1
    output = (width * upscale, height * upscale)
    check_output_side(quality, (width, height), output)
    notes: list[str] = []
    refine_strength = None
    if tier.refine and preset.use_refiner:
        if has_img2img(model.family):
            refine_strength = preset.refine_strength
        else:
            notes.append(no_img2img_note(model))
    # Every tier may need it: a model with a small native size (the demo's 64 px) renders below
    # the size asked, and the size stage runs the upscaler only while the image is smaller.
    upscaler = upscaler_for(preset) if preset.use_upscaler else None
    if upscale > 1 and upscaler is None:
        notes.append(NO_UPSCALER)
    palette = palette_of(preset)
    return Plan(
        output_size=output,
        upscale=upscale,
        upscaler=upscaler,
        refine_strength=refine_strength,
        palette=palette,
        correct=preset.correct_palette and palette is not None,
        sharpen_radius=preset.sharpen_radius,
        sharpen_amount=preset.sharpen_amount,
        transparent=preset.transparent_background and palette is not None and bool(palette.background),
        svg=preset.trace_svg and palette is not None,
        floor=preset.compliance_floor,
        **canvas_of(preset),
        notes=tuple(notes),
    )


def palette_of(preset: AssetPreset) -> Palette | None:
    """The brand kit's palette, or None where the asset type has no kit or its kit no colours."""
    kit = preset.kit
    if kit is None or not kit.palette:
        return None
    return Palette(tuple(kit.palette), kit.background_colour, kit.palette_tolerance)


def canvas_of(preset: AssetPreset) -> dict[str, Any]:
    """The plan's icon canvas: the kit's safe area, background and tolerance where finishing can act
    on them (it finds the subject against the background); {} (as drawn) otherwise."""
    kit = preset.kit
    if kit is None or not kit.safe_area or not kit.background_colour:
        return {}
    return {"safe_area": kit.safe_area, "background": kit.background_colour, "canvas_tolerance": kit.palette_tolerance}


def check_output_side(quality: str, size: tuple[int, int], output: tuple[int, int]) -> None:
    limit = settings.STUDIO_MAX_OUTPUT_SIDE
    if max(output) > limit:
        label = Quality(quality).label
        raise ValidationError(
            f"{label} on {size[0]}×{size[1]} would be {output[0]}×{output[1]}; the largest finished side is "
            f"{limit}. Pick a smaller size or a lower quality.",
            code="output_too_large",
        )


def upscaler_for(preset: AssetPreset) -> UpscalerRef | None:
    """The asset type's upscaler when set and enabled, else the enabled one of the largest scale."""
    chosen = preset.upscaler if preset.upscaler_id else None
    if chosen is None or not chosen.enabled:
        chosen = Upscaler.objects.filter(enabled=True, scale__gt=0).order_by("-scale", "name").first()
    if chosen is None:
        return None
    return UpscalerRef(
        key=chosen.key,
        name=chosen.name,
        file=chosen.file,
        scale=chosen.scale,
        architecture=chosen.architecture,
        half=chosen.supports_half,
    )


def tier_notes(preset: AssetPreset, model: ImageModel | None) -> list[tuple[str, str]]:
    """(tier label, what it does) for the studio form: "High: 40 steps, 2× upscale with Demo icons 4x, refiner"."""
    base = (model.default_steps if model else None) or preset.steps
    upscaler = upscaler_for(preset) if preset.use_upscaler else None
    notes = []
    for quality, tier in QUALITY.items():
        parts = [f"{max(1, round(base * tier.steps))} steps"]
        if tier.max_side:
            parts.append(f"at most {tier.max_side} px")
        if preset.use_upscaler and tier.upscale > 1:
            how = f"with {upscaler.name}" if upscaler else "with Lanczos (no upscaler installed)"
            parts.append(f"{tier.upscale}× upscale {how}")
        if tier.refine and preset.use_refiner:
            parts.append("refiner" if model is None or has_img2img(model.family) else "no refiner (no img2img)")
        notes.append((Quality(quality).label, ", ".join(parts)))
    return notes
