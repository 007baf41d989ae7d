"""What a job freezes at submission: its parameters, sizes, negative prompt, LoRAs, references and
seeds, so the worker, the image page and a retry all read the same record. Reads only: no writes,
no queue."""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from ..control.addons import reference_addon, reference_problem, takes_references
from ..engine.families import has_native_references, uses_negative_prompt
from ..finishing.planner import plan_for
from ..models import (
    QUALITY,
    AssetPreset,
    BrandLora,
    BrandReference,
    GeneratedImage,
    GenerationJob,
    ImageModel,
    InputImage,
    PresetLora,
    Quality,
    QualityPreset,
)

MAX_SEED = 2**32 - 1


def fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Scale down to `max_side`, keeping the aspect ratio, on the 16-pixel grid every family takes."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(64, round(width * scale / 16) * 16), max(64, round(height * scale / 16) * 16)


def _step_factor(tier: QualityPreset, model: ImageModel) -> float:
    """The tier's factor on the steps; a distilled model (its entry sets both its steps and no
    guidance: FLUX.1 [schnell], SDXL Turbo, Z-Image Turbo) gets fewer for a draft, never more."""
    if model.default_steps and model.default_guidance == 0:
        return min(tier.steps, 1.0)
    return tier.steps


def resolve_params(
    *,
    preset: AssetPreset,
    model: ImageModel,
    prompt: str,
    quality: str,
    variations: int,
    width: int,
    height: int,
    seed: int | None,
    brand_lora: str = "",
    masked: bool = False,
) -> dict[str, object]:
    """Every parameter the worker needs, frozen at submission so the job can be reproduced.

    Steps and guidance come from the asset type unless the model sets its own (a distilled
    model such as FLUX.1 [schnell] needs 4 steps and no guidance whatever the asset type).
    `masked`: a repaint, which FLUX.1 runs without true CFG (so without the negative prompt).
    """
    if problem := banned_problem(preset, prompt):
        raise ValidationError(problem, code="banned_word")
    tier = QUALITY[Quality(quality)]
    requested = [width, height]
    width, height = fit_size(width, height, tier.max_side)
    loras = choose_loras(preset, model, brand_lora)
    steps = model.default_steps or preset.steps
    plan = plan_for(preset, model, quality, width, height)  # ValidationError past STUDIO_MAX_OUTPUT_SIDE
    guidance = preset.guidance_scale if model.default_guidance is None else model.default_guidance
    return {
        "model_key": model.key,
        "model": {
            "name": model.name,
            "family": model.family,
            "source": model.source,
            "license": model.license_name,
            "license_url": model.license_url,
            "commercial_use": model.commercial_use,
            "license_notice": model.license_notice,
        },
        "preset": preset.slug,
        "preset_version": preset.version,
        # The brand kit as it was: the image page, the review's lineage and the content credentials say it.
        **({"kit": preset.kit.record()} if preset.kit else {}),
        "prompt": with_trigger_words(preset.expand_prompt(prompt), loras),
        # Recorded only where the model's pipeline acts on it, so the image page says what was used.
        "negative_prompt": negative_prompt(preset, model, guidance, masked=masked),
        "width": width,
        "height": height,
        "requested_size": requested,
        "steps": max(1, round(steps * _step_factor(tier, model))),
        "guidance_scale": guidance,
        "seeds": new_seeds(variations, seed),
        "loras": [
            {
                "name": pl.lora.name,
                "path": pl.lora.file,
                "strength": pl.strength,
                "trigger_words": pl.lora.trigger_words,
            }
            for pl in loras
        ],
        "batch_size": min(variations, settings.STUDIO_MAX_BATCH),
        "subject_note": subject_note(model, prompt),
        # What finishing will do, frozen: the worker, the image page and retries read this record
        # (as JSON gives it back, lists for tuples, so a job's params compare equal once saved).
        "finishing": json.loads(json.dumps(plan.to_params())),
    }


def negative_prompt(preset: AssetPreset, model: ImageModel, guidance: float, *, masked: bool = False) -> str:
    """The asset type's negative prompt where this model's pipeline acts on it, else ""."""
    used = uses_negative_prompt(model.family, model.options, guidance, masked=masked)
    return " ".join(preset.negative_prompt.split()) if used else ""


def subject_note(model: ImageModel, prompt: str) -> str:
    """What to tell a designer whose description a small model cannot draw (it draws what it knows)."""
    if not model.unknown_subject(prompt):
        return ""
    named = ", ".join(model.subjects[:SUBJECTS_NAMED])
    more = len(model.subjects) - SUBJECTS_NAMED
    rest = f" or the {more} others listed under the model picker" if more > 0 else ""
    return (
        f"{model.name} knows only some subjects and this description names none of them, so it drew one it "
        f"knows. Try one of: {named}{rest}."
    )


SUBJECTS_NAMED = 8  # a note names this many of a model's subjects; the picker lists them all


def choose_loras(preset: AssetPreset, model: ImageModel, brand_lora: str = "") -> list[PresetLora]:
    """The LoRAs a job applies: the asset type's for this model's family, with its trained
    version swapped for another one (`brand_lora` = a BrandLora id) or left out ("none")."""
    links = preset.preset_loras.select_related("lora").filter(lora__family=model.family, lora__enabled=True)
    # A LoRA whose file is gone is left out (staff see it flagged), so the asset type still renders.
    loras = [pl for pl in links if pl.lora.path.is_file() and pl.lora.fits_model(model.key)]
    if not brand_lora:
        return loras
    published = [pl for pl in loras if pl.lora.preset_id == preset.pk]
    loras = [pl for pl in loras if pl not in published]
    if brand_lora != "none":
        chosen = BrandLora.objects.get(pk=int(brand_lora), preset=preset, family=model.family, enabled=True)
        strength = published[0].strength if published else 0.85
        loras.append(PresetLora(preset=preset, lora=chosen, strength=strength))  # not saved: this job only
    return loras


def missing_loras() -> list[PresetLora]:
    """LoRAs an enabled asset type names whose file is not there: jobs run without them."""
    links = PresetLora.objects.select_related("lora", "preset").filter(preset__enabled=True, lora__enabled=True)
    return [pl for pl in links if not pl.lora.path.is_file()]


def with_trigger_words(prompt: str, loras: list[PresetLora]) -> str:
    words = [pl.lora.trigger_words.strip() for pl in loras if pl.lora.trigger_words.strip()]
    return ", ".join([*words, prompt])


def brand_references_for(preset: AssetPreset, model: ImageModel) -> list[BrandReference]:
    """The brand kit's references, where the model can take style references."""
    if not takes_references(model) or preset.kit is None:
        return []
    return list(preset.kit.brand_references.filter(enabled=True)[:4])


def banned_problem(preset: AssetPreset | None, text: str) -> str:
    """What a designer is told when a description uses a word the asset type's brand kit bans; "" if none."""
    kit = preset.kit if preset is not None else None
    banned = kit.banned_in(text) if kit is not None else []
    if kit is None or not banned:
        return ""
    quoted = ", ".join(f"“{word}”" for word in banned)
    return f"The {kit.name} brand kit does not allow {quoted} in a description; rephrase without it."


def reference_params(
    model: ImageModel,
    references: list[InputImage] | list[BrandReference],
    strength: float | None,
    frozen_model: dict[str, Any],
) -> dict[str, Any]:
    """What a job records of its style references and the IP-Adapter it takes them through
    (none, with no strength, where the model's own pipeline takes them); an add-on not for
    production use marks the job's outputs as a model's notice does."""
    if has_native_references(model.family):  # FLUX.2 klein: its own image input follows them as given
        return {"references": [_reference(r) for r in references]}
    addon = reference_addon(model)
    if addon is None:
        raise ValidationError(reference_problem(model))
    record: dict[str, Any] = {
        "references": [_reference(r) for r in references],
        "reference_strength": 0.6 if strength is None else strength,
        "ip_adapter": {
            "key": addon.key,
            "name": addon.name,
            "path": addon.local_path,
            "weight_name": addon.weight_name,
            "license": addon.license_name,
            "commercial_use": addon.commercial_use,
        },
    }
    if not addon.commercial_use:
        notice = addon.license_notice or f"Made with {addon.name}, whose license does not allow production use."
        record["model"] = {**frozen_model, "commercial_use": False, "license_notice": notice}
    return record


def _reference(row: InputImage | BrandReference) -> dict[str, str]:
    if isinstance(row, BrandReference):  # the brand kit's own: every designer may see it
        return {"brand": str(row.pk), "name": row.name or "brand reference", "file": str(row.file.name)}
    return {"input": str(row.pk), "sha256": row.sha256, "name": row.name, "file": str(row.file.name)}


# "More like this": how far an img2img variation may move away from its image.
VARIATION_STRENGTH = {"subtle": 0.4, "strong": 0.7}


def new_seeds(count: int, first: int | None = None) -> list[int]:
    """One seed per image, consecutive from `first` (random when not given)."""
    start = secrets.randbelow(MAX_SEED - count) if first is None else first
    return [start + i for i in range(count)]


def params_from_image(
    image: GeneratedImage,
    model: ImageModel,
    prompt: str,
    variations: int,
    *,
    size: tuple[int, int] | None = None,
    masked: bool = False,
) -> dict[str, Any]:
    """A new job's parameters from an image's job: its asset type, tier and size (or `size`),
    frozen now, with the new prompt (its own when empty) and fresh seeds."""
    job = image.job
    width, height = size or job.params.get("requested_size") or [job.params["width"], job.params["height"]]
    return resolve_params(
        preset=job.preset,
        model=model,
        prompt=prompt.strip() or job.prompt,
        quality=job.quality,
        variations=variations,
        width=width,
        height=height,
        seed=None,
        masked=masked,
    )


def job_settings(job: GenerationJob, *, seed: int | None = None) -> dict[str, object]:
    """What the studio form needs to make this job again (Tweak prompt, Reuse settings)."""
    width, height = job.params.get("requested_size") or [job.params["width"], job.params["height"]]
    values: dict[str, object] = {
        "preset": job.preset.slug,
        "model": job.model_key,
        "prompt": job.prompt,
        "quality": job.quality,
        "variations": 1 if seed is not None else job.images_total,
        "size": f"{width}x{height}",
    }
    if seed is not None:
        values["seed"] = seed
    if sketch := job.params.get("sketch"):
        values |= {"sketch_input": sketch["input"], "sketch_follow": sketch["follow"]}
        values["sketch_mode"] = sketch.get("mode", "drawing")
    if references := [r for r in job.params.get("references", []) if "input" in r]:
        values["reference_inputs"] = ",".join(r["input"] for r in references)
        values["reference_strength"] = job.params.get("reference_strength", 0.6)
    return values
