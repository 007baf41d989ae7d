"""Writes that cross models or touch the queue. Views and tasks call these; no torch here."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from .control.sketch import sketch_params, sketch_problem
from .finishing.plans import plan_for
from .models import (
    AssetPreset,
    BrandLora,
    BrandReference,
    GeneratedImage,
    GenerationJob,
    GroupKind,
    ImageModel,
    ImagePreview,
    InputImage,
    JobGroup,
    JobStatus,
    PresetLora,
    Quality,
)

log = logging.getLogger(__name__)

MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class QualityPreset:
    """The brief's quality tiers, applied on top of an asset type (whose steps are "standard")."""

    steps: float  # factor on the asset type's (or model's) steps: 15 / 28 / 40 / 50 at 28
    max_side: int | None  # drafts render small and fast
    upscale: int  # factor on the size asked, where the asset type upscales; 1 = none
    refine: bool  # an img2img refiner pass, where the asset type asks for it


# The brief: High = 2x, Ultra = 4x + refiner, so only Ultra refines.
QUALITY = {
    Quality.DRAFT: QualityPreset(steps=15 / 28, max_side=512, upscale=1, refine=False),
    Quality.STANDARD: QualityPreset(steps=1.0, max_side=None, upscale=1, refine=False),
    Quality.HIGH: QualityPreset(steps=40 / 28, max_side=None, upscale=2, refine=False),
    Quality.ULTRA: QualityPreset(steps=50 / 28, max_side=None, upscale=4, refine=True),
}


def fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Scale down to `max_side`, keeping the aspect ratio, on the 16-pixel grid every family takes."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(64, round(width * scale / 16) * 16), max(64, round(height * scale / 16) * 16)


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
        "prompt": with_trigger_words(preset.expand_prompt(prompt), loras),
        # Recorded only where the model's pipeline acts on it, so the image page says what was used.
        "negative_prompt": negative_prompt(preset, model, guidance, masked=masked),
        "width": width,
        "height": height,
        "requested_size": requested,
        "steps": max(1, round(steps * tier.steps)),
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
    from .engine.families import uses_negative_prompt

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


def job_create(
    *,
    owner: User,
    preset: AssetPreset,
    prompt: str,
    model: ImageModel | None = None,
    quality: str = Quality.STANDARD,
    variations: int = 4,
    width: int | None = None,
    height: int | None = None,
    seed: int | None = None,
    group: JobGroup | None = None,
    brand_lora: str = "",
    sketch: InputImage | None = None,
    sketch_follow: str = "close",
    sketch_mode: str = "drawing",
    references: list[InputImage] | None = None,
    reference_strength: float | None = None,
    brand_references: bool = True,
) -> GenerationJob:
    """One job, queued after commit. No per-user limits here: what designers submit goes through
    `job_submit`, the group functions or the follow-ups, which check them under a lock.
    With a `sketch` (the owner's InputImage) the model starts from it (generation/control/)."""
    model = model or ImageModel.objects.get(key=settings.STUDIO_DEFAULT_MODEL)
    params = resolve_params(
        preset=preset,
        model=model,
        prompt=prompt,
        quality=quality,
        variations=variations,
        width=width or preset.default_width,
        height=height or preset.default_height,
        seed=seed,
        brand_lora=brand_lora,
    )
    if sketch is not None:
        if problem := sketch_problem(model, sketch_mode):
            raise ValidationError(problem)
        params |= sketch_params(sketch, sketch_follow, sketch_mode, model)
        params["subject_note"] = ""  # the sketch gives the shape, whatever the description names
        control: Any = params.get("control")
        if control and not control["commercial_use"]:
            notice = control["license_notice"]
            params["model"] = {**params["model"], "commercial_use": False, "license_notice": notice}  # type: ignore[dict-item]
    if references:
        params |= reference_params(model, references, reference_strength, params["model"])  # type: ignore[arg-type]
    elif brand_references and sketch is None and (defaults := _brand_references(preset, model)):
        params |= reference_params(model, defaults, reference_strength, params["model"])  # type: ignore[arg-type]
    job = GenerationJob.objects.create(
        owner=owner,
        preset=preset,
        model_key=model.key,
        prompt=prompt.strip(),
        quality=quality,
        params=params,
        images_total=variations,
        group=group,
    )
    dispatch(owner.pk)  # in the submission's transaction: the jobs it sends go to the broker after commit
    return job


def _brand_references(preset: AssetPreset, model: ImageModel) -> list[BrandReference]:
    """The asset type's own references, where the model can take style references."""
    from .control.addons import takes_references

    if not takes_references(model):
        return []
    return list(preset.brand_references.filter(enabled=True)[:4])


def reference_params(
    model: ImageModel,
    references: list[InputImage] | list[BrandReference],
    strength: float | None,
    frozen_model: dict[str, Any],
) -> dict[str, Any]:
    """What a job records of its style references and the IP-Adapter it takes them through
    (none, with no strength, where the model's own pipeline takes them); an add-on not for
    production use marks the job's outputs as a model's notice does."""
    from .control.addons import reference_addon, reference_problem
    from .engine.families import has_native_references

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
    if isinstance(row, BrandReference):  # the asset type's own: every designer may see it
        return {"brand": str(row.pk), "name": row.name or "brand reference", "file": str(row.file.name)}
    return {"input": str(row.pk), "sha256": row.sha256, "name": row.name, "file": str(row.file.name)}


def job_submit(*, owner: User, **fields: Any) -> GenerationJob:
    """A designer's submission (studio page, API): `job_create` within the per-user limits."""
    with within_limits(owner.pk):
        return job_create(owner=owner, **fields)


def job_retry(*, job: GenerationJob) -> GenerationJob:
    """A new job with exactly the same parameters (and seeds) as one that failed."""
    return _job_from(job, params=job.params, images_total=job.images_total, retry_of=job)


def job_more(*, job: GenerationJob, variations: int | None = None) -> GenerationJob:
    """Same settings, new seeds: "Generate N more"."""
    count = variations or job.images_total
    params = {**job.params, "seeds": new_seeds(count), "batch_size": min(count, settings.STUDIO_MAX_BATCH)}
    return _job_from(job, params=params, images_total=count, more_of=job)


# "More like this": how far an img2img variation may move away from its image.
VARIATION_STRENGTH = {"subtle": 0.4, "strong": 0.7}


def job_vary(*, image: GeneratedImage, strength: str) -> GenerationJob:
    """Variations of one image: img2img from it where the model can, nearby seeds where not."""
    job = image.job
    count = job.images_total
    model = ImageModel.objects.filter(key=job.model_key).first()
    variation: dict[str, object] = {"strength": strength, "of": str(image.pk), "of_seed": image.seed}
    params: dict[str, object] = {**job.params, "batch_size": min(count, settings.STUDIO_MAX_BATCH)}
    # The variations start from the image, not from what steered the job that made it.
    for steering in ("sketch", "inpaint", "edit", "control", "references", "reference_strength", "ip_adapter"):
        params.pop(steering, None)
    if model is not None and model.supports_img2img:
        params.update(seeds=new_seeds(count), init_image=image.file.name, strength=VARIATION_STRENGTH[strength])
        variation["mode"] = "img2img"
    else:
        # Without img2img the closest thing is the same settings on seeds next to the job's own.
        params.pop("init_image", None)
        params.pop("strength", None)
        params["seeds"] = new_seeds(count, max(job.params["seeds"]) + 1)
        variation["mode"] = "seeds"
    params["variation"] = variation
    # Variations stand on their own: in a comparison they would read as one more column.
    return _job_from(job, params=params, images_total=count, source_image_id=image.pk, group_id=None)


def job_inpaint(*, image: GeneratedImage, mask: InputImage, prompt: str = "", variations: int = 4) -> GenerationJob:
    """Repaint where `mask` paints over `image` (its description, or a new one), keeping the rest:
    the family's inpaint pipeline over the image as the model drew it, finished as its job was.
    ValidationError when the model cannot, or the mask does not fit (generation/control/inpaint.py)."""
    from .control.inpaint import mask_note
    from .uploads import UploadError

    job, model = image.job, _inpaint_model(image)
    try:
        note = mask_note(mask, image, (job.params["width"], job.params["height"]))
    except UploadError as exc:
        raise ValidationError(str(exc)) from None
    params = _params_from(image, model, prompt, variations, masked=True)
    # The render as the model drew it, where finishing kept one (not the cut-out or the upscale).
    params["init_image"] = (image.rendered or image.file).name
    params["strength"] = 1.0  # the masked part drawn anew; the rest is the image's own pixels
    params["inpaint"] = {"of": str(image.pk), "of_seed": image.seed, "mask": str(mask.pk)}
    params["inpaint"] |= {"mask_image": mask.file.name, "note": note}
    return _job_on(image, model, prompt, params, variations)


def job_outpaint(
    *, image: GeneratedImage, extend: dict[str, int], prompt: str = "", variations: int = 4
) -> GenerationJob:
    """Extend the image's canvas by `extend` (% of its side, per side) and draw what is there:
    the family's inpaint pipeline over the image on the larger canvas, the new part masked.
    The canvas and the mask are stored with the job like a designer's inputs."""
    from PIL import Image

    from .control.inputs import store_image
    from .control.outpaint import MAX_SHARE, SIDES, canvas_and_mask, extended_size
    from .engine.families import size_multiple

    job, model = image.job, _inpaint_model(image)
    if not any(extend.get(side) for side in SIDES):
        raise ValidationError("Extend at least one side.")
    if any(not 0 <= extend.get(side, 0) <= MAX_SHARE for side in SIDES):
        raise ValidationError(f"Each side extends by 0 to {MAX_SHARE} % of the image.")
    render = (job.params["width"], job.params["height"])
    width, height, pixels = extended_size(*render, {s: extend.get(s, 0) for s in SIDES}, size_multiple(model.family))
    if problem := model.renders(width, height):
        raise ValidationError(f"{problem}: the extended canvas would be {width}×{height}.")
    with (image.rendered or image.file).open("rb") as fh:
        drawn: Image.Image = Image.open(fh)
        drawn.load()
    if drawn.size != render:
        drawn = drawn.resize(render, Image.Resampling.LANCZOS)
    canvas, mask = canvas_and_mask(drawn, (width, height), pixels)
    canvas_row = store_image(job.owner, canvas, f"canvas of {image.pk}")
    mask_row = store_image(job.owner, mask, f"outpaint mask of {image.pk}", flatten=False)
    params = _params_from(image, model, prompt, variations, size=(width, height), masked=True)
    params |= {"init_image": canvas_row.file.name, "strength": 1.0}
    params["inpaint"] = {"of": str(image.pk), "of_seed": image.seed, "mask": str(mask_row.pk)}
    params["inpaint"] |= {
        "mask_image": mask_row.file.name,
        "note": f"Outpainted from {render[0]}×{render[1]} to {width}×{height}.",
        "outpaint": {side: extend.get(side, 0) for side in SIDES},
    }
    return _job_on(image, model, prompt, params, variations)


def job_edit(
    *, image: GeneratedImage, instruction: str, model: ImageModel | None = None, variations: int = 4
) -> GenerationJob:
    """ "Make the background blue" on one of a user's images: the instruction goes to a model with
    an edit pipeline (the image's own where it has one, else the first the user may use) with
    the image; the result keeps the image's asset type and finishing, and links to it."""
    from .control.edit import edit_models, edit_problem

    job, owner = image.job, image.job.owner
    if model is None:
        own = ImageModel.objects.filter(key=job.model_key).first()
        model = own if own is not None and own.supports_edit else next(iter(edit_models(owner)), None)
    if problem := edit_problem(owner, model):
        raise ValidationError(problem)
    assert model is not None
    params = _params_from(image, model, instruction, variations)
    params["prompt"] = " ".join(instruction.split())  # an instruction, not a subject for the template
    params["edit"] = {"of": str(image.pk), "of_seed": image.seed, "instruction": instruction, "file": image.file.name}
    return _job_on(image, model, instruction, params, variations)


def _inpaint_model(image: GeneratedImage) -> ImageModel:
    """The model that made the image, where it can repaint (ValidationError naming those that can)."""
    from .control.inpaint import inpaint_problem

    model = ImageModel.objects.filter(key=image.job.model_key).first()
    if model is None:
        raise ValidationError("The model that made this image is no longer installed.")
    if problem := inpaint_problem(model):
        raise ValidationError(problem)
    return model


def _params_from(
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


def _job_on(
    image: GeneratedImage, model: ImageModel, prompt: str, params: dict[str, Any], variations: int
) -> GenerationJob:
    """A job made from one of a user's images (repainted, extended, edited), linked to it, queued
    after commit within the per-user limits."""
    job = image.job
    with within_limits(job.owner_id):
        new = GenerationJob.objects.create(
            owner=job.owner,
            preset=job.preset,
            model_key=model.key,
            prompt=prompt.strip() or job.prompt,
            quality=job.quality,
            params=params,
            images_total=variations,
            source_image=image,
        )
        dispatch(job.owner_id)
    return new


def _job_from(job: GenerationJob, *, params: dict[str, object], images_total: int, **link: object) -> GenerationJob:
    """A job with another job's settings (in the same group, from the same image), queued after commit."""
    link = {"group_id": job.group_id, "source_image_id": job.source_image_id, **link}
    with within_limits(job.owner_id):
        new = GenerationJob.objects.create(
            owner=job.owner,
            preset=job.preset,
            model_key=job.model_key,
            prompt=job.prompt,
            quality=job.quality,
            params=params,
            images_total=images_total,
            **link,
        )
        dispatch(job.owner_id)
    return new


def group_compare(
    *,
    owner: User,
    prompt: str,
    presets: list[AssetPreset],
    models: list[ImageModel],
    quality: str,
    variations: int,
    seed: int | None = None,
) -> JobGroup:
    """One description across several models (one asset type) or several asset types (one model).

    Every column gets the same seeds, so the columns differ only by what is compared.
    """
    kind = GroupKind.MODELS if len(models) > 1 else GroupKind.PRESETS
    first_seed = new_seeds(variations)[0] if seed is None else seed
    with within_limits(owner.pk, jobs=len(presets) * len(models)):
        group = JobGroup.objects.create(owner=owner, kind=kind, title=prompt.strip()[:200])
        for preset in presets:
            for model in models:
                job_create(
                    owner=owner,
                    preset=preset,
                    prompt=prompt,
                    model=model,
                    quality=quality,
                    variations=variations,
                    seed=first_seed,
                    group=group,
                )
    return group


def group_batch(
    *,
    owner: User,
    preset: AssetPreset,
    model: ImageModel,
    prompts: list[str],
    quality: str,
    variations: int,
    width: int,
    height: int,
) -> JobGroup:
    """Many descriptions for one asset type, submitted at once: one job each, one group."""
    title = f"{len(prompts)} {preset.name} description{'s' if len(prompts) != 1 else ''}"
    with within_limits(owner.pk, jobs=len(prompts)):
        group = JobGroup.objects.create(owner=owner, kind=GroupKind.BATCH, title=title)
        for prompt in prompts:
            job_create(
                owner=owner,
                preset=preset,
                prompt=prompt,
                model=model,
                quality=quality,
                variations=variations,
                width=width,
                height=height,
                group=group,
            )
    return group


def new_seeds(count: int, first: int | None = None) -> list[int]:
    """One seed per image, consecutive from `first` (random when not given)."""
    start = secrets.randbelow(MAX_SEED - count) if first is None else first
    return [start + i for i in range(count)]


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


class CannotRefinish(Exception):
    pass


def job_refinish(job: GenerationJob) -> GenerationJob:
    """Run finishing again on a failed job's stored renders ("Retry finishing"): no new render,
    the same frozen plan (the refiner included, which loads the model), then the job completes."""
    with transaction.atomic():
        locked = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != JobStatus.FAILED or not locked.images.exists():
            raise CannotRefinish("Only a failed job with stored images can retry its finishing.")
        locked.status, locked.error, locked.finished_at = JobStatus.QUEUED, "", None
        locked.attempts, locked.timings = 0, {}  # a new try, asked for by the designer
        locked.dispatched_at = timezone.now()  # on the queue now: `dispatch` must not send it again
        locked.save(update_fields=["status", "error", "finished_at", "attempts", "timings", "dispatched_at"])
        transaction.on_commit(lambda: _enqueue_finishing(locked.pk))
    return locked


def _enqueue_finishing(job_id: uuid.UUID) -> None:
    from .tasks import finish_generation_job

    _send(finish_generation_job, job_id, "finishing of job")


def job_enqueue(job_id: uuid.UUID) -> None:
    from .tasks import run_generation_job

    _send(run_generation_job, job_id, "job")


def _send(task: Any, job_id: uuid.UUID, what: str) -> None:
    """Put a job's task on the broker; when the broker is down, say so on the job rather than
    leave it queued forever."""
    try:
        task.delay(str(job_id))
    except Exception as exc:
        log.exception("Could not enqueue %s %s", what, job_id)
        job_fail(job_id, f"The job queue is unreachable ({exc.__class__.__name__}); try again shortly.", then=False)


def dispatch(user_id: int) -> int:
    """Send the user's oldest waiting jobs to the GPU queue, up to STUDIO_USER_DISPATCH at once.

    Called when a job is created and when one ends. Keeping only a few of each user's jobs on
    the (first in, first out) broker queue makes users take turns on the workers: a batch of 40
    waits in the database, in order, while other people's jobs go ahead of its remainder.

    Inside a submission's transaction (which holds the same lock) it joins it: one commit for the
    job and its dispatch, not two; the broker gets the jobs after that commit either way.
    """
    with transaction.atomic(savepoint=False):
        if _holding_lock.get() != user_id:  # a submission inside within_limits holds it already
            User.objects.select_for_update().filter(pk=user_id).first()  # one dispatcher per user at a time
        # One read of the user's unfinished jobs (at most STUDIO_MAX_JOBS_IN_FLIGHT rows): how
        # many are on the queue already, and which wait, oldest first.
        mine = GenerationJob.objects.filter(owner_id=user_id, status__in=[JobStatus.QUEUED, JobStatus.PROCESSING])
        rows = list(mine.order_by("created_at").values_list("pk", "status", "dispatched_at"))
        free = settings.STUDIO_USER_DISPATCH - sum(sent is not None for _, _, sent in rows)
        waiting = [pk for pk, status, sent in rows if status == JobStatus.QUEUED and sent is None]
        ids = waiting[: max(0, free)]
        if ids:
            GenerationJob.objects.filter(pk__in=ids).update(dispatched_at=timezone.now())
            transaction.on_commit(lambda: _enqueue_all(ids))
    return len(ids)


def _enqueue_all(ids: list[uuid.UUID]) -> None:
    for job_id in ids:
        job_enqueue(job_id)


def dispatch_waiting() -> int:
    """The reaper's safety net: dispatch for every user with waiting jobs (a dispatch that was
    lost, say to a crash between a job ending and the next being sent, is made up here)."""
    users = GenerationJob.objects.filter(status=JobStatus.QUEUED, dispatched_at__isnull=True)
    return sum(dispatch(user_id) for user_id in users.values_list("owner_id", flat=True).distinct())


def _dispatch_after(job_id: uuid.UUID) -> None:
    owner = GenerationJob.objects.filter(pk=job_id).values_list("owner_id", flat=True).first()
    if owner is not None:
        transaction.on_commit(lambda: dispatch(owner))


def job_fail(job_id: uuid.UUID, reason: str, *, then: bool = True) -> None:
    GenerationJob.objects.filter(pk=job_id).exclude(status__in=[JobStatus.COMPLETE, JobStatus.CANCELLED]).update(
        status=JobStatus.FAILED, error=reason[:2000], finished_at=timezone.now()
    )
    if then:
        _dispatch_after(job_id)


def job_complete(job_id: uuid.UUID, *, timings: dict[str, float] | None = None) -> None:
    GenerationJob.objects.filter(pk=job_id, status=JobStatus.PROCESSING).update(
        status=JobStatus.COMPLETE,
        finished_at=timezone.now(),
        error="",
        timings=timings or {},
        progress_step=F("progress_steps"),  # done means every step done, whatever was stored last
    )
    _dispatch_after(job_id)


def job_cancel(*, job: GenerationJob) -> None:
    """Queued jobs never start; a running one stops at its next step (the worker checks)."""
    GenerationJob.objects.filter(pk=job.pk, status__in=[JobStatus.QUEUED, JobStatus.PROCESSING]).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now()
    )
    _dispatch_after(job.pk)


class QuotaExceeded(Exception):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@contextmanager
def within_limits(user_id: int, *, jobs: int = 1) -> Iterator[None]:
    """Check the per-user limits and create the jobs (inside the block) as one step.

    Checked and created apart, simultaneous submissions all pass the check before any job
    exists (48 at once got 35 through a limit of 30). The lock on the user's row, the one
    `dispatch` takes too, holds the next submission back until this one's jobs are committed;
    SQLite has no row locks, but its IMMEDIATE transactions (settings.py) take the database's
    write lock at BEGIN, which serialises submissions the same way.
    """
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        quota_check(user, jobs=jobs)
        token = _holding_lock.set(user_id)
        try:
            yield
        finally:
            _holding_lock.reset(token)


# The user whose row lock this thread's transaction holds (within_limits), so dispatch skips taking it again.
_holding_lock: contextvars.ContextVar[int | None] = contextvars.ContextVar("holding_lock", default=None)


def quota_check(user: User, *, jobs: int = 1) -> None:
    """Fair use: raise QuotaExceeded (with when to try again) past the per-user limits."""
    since = timezone.now() - timedelta(seconds=60)
    # One query for both limits: a submission runs this under the user's lock, so it should be quick.
    counts = GenerationJob.objects.filter(owner=user).aggregate(
        in_flight=Count("pk", filter=Q(status__in=[JobStatus.QUEUED, JobStatus.PROCESSING])),
        single=Count("pk", filter=Q(created_at__gte=since, group__isnull=True)),
        groups=Count("group", filter=Q(created_at__gte=since), distinct=True),
    )
    in_flight = counts["in_flight"]
    if in_flight + jobs > settings.STUDIO_MAX_JOBS_IN_FLIGHT:
        raise QuotaExceeded(
            f"You have {in_flight} jobs waiting or running; the limit is {settings.STUDIO_MAX_JOBS_IN_FLIGHT}. "
            "New ones can start as those finish.",
            retry_after=30,
        )
    submissions = counts["single"] + counts["groups"]
    if submissions >= settings.STUDIO_SUBMISSIONS_PER_MINUTE:
        recent = GenerationJob.objects.filter(owner=user, created_at__gte=since)
        oldest = recent.order_by("created_at").values_list("created_at", flat=True).first() or timezone.now()
        wait = max(1, int(60 - (timezone.now() - oldest).total_seconds()) + 1)
        raise QuotaExceeded(f"That is {submissions} submissions in a minute; try again in {wait} s.", retry_after=wait)


def _is_stale(job: GenerationJob) -> bool:
    limit = timezone.now() - timedelta(seconds=settings.STUDIO_STALE_AFTER_SECONDS)
    return job.heartbeat_at is None or job.heartbeat_at < limit


@transaction.atomic
def job_claim(job_id: uuid.UUID, *, worker: str) -> GenerationJob | None:
    """Take the lease on a job before running it, or return None if it must not run here.

    A delivery may be a duplicate (the broker redelivered, or the reaper requeued): the row
    lock makes sure only one worker runs a job, and the attempt counter caps the retries
    of a job that keeps killing its worker.
    """
    job = GenerationJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.is_ended:
        return None
    if job.status == JobStatus.PROCESSING and job.worker != worker and not _is_stale(job):
        return None  # alive elsewhere
    if job.attempts >= settings.STUDIO_MAX_ATTEMPTS:
        job.status, job.error, job.finished_at = JobStatus.FAILED, _gave_up(job), timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        _dispatch_after(job.pk)
        return None
    now = timezone.now()
    job.status, job.worker, job.worker_pid = JobStatus.PROCESSING, worker, os.getpid()
    job.attempts += 1
    job.started_at = job.heartbeat_at = now
    # No steps until the engine reports them: the page says "Loading the model…", not the last attempt's "Step 0 of 28".
    job.progress_step = job.progress_steps = 0
    lease = ["status", "worker", "worker_pid", "attempts", "started_at", "heartbeat_at"]
    job.save(update_fields=[*lease, "progress_step", "progress_steps"])
    return job


def _gave_up(job: GenerationJob) -> str:
    return (
        f"The worker stopped {job.attempts} times while running this job (last on {job.worker or 'unknown'}); "
        "it was not retried again. Try fewer variations or a smaller size, or ask an admin to check the workers."
    )


def jobs_reap_stale(*, worker: str | None = None) -> int:
    """Requeue (or fail, past the retry cap) jobs whose worker stopped sending heartbeats.

    With `worker`, every job that worker held is reaped at once: it has just started, so
    nothing it held can still be running.
    """
    if worker:
        candidates = GenerationJob.objects.filter(status=JobStatus.PROCESSING, worker=worker)
    else:
        limit = timezone.now() - timedelta(seconds=settings.STUDIO_STALE_AFTER_SECONDS)
        candidates = GenerationJob.objects.filter(status=JobStatus.PROCESSING, heartbeat_at__lt=limit)
    reaped = 0
    for job_id in candidates.values_list("pk", flat=True):
        reaped += _reap(job_id, stale_only=worker is None)
    return reaped


@transaction.atomic
def _reap(job_id: uuid.UUID, *, stale_only: bool) -> int:
    job = GenerationJob.objects.select_for_update().get(pk=job_id)
    if job.status != JobStatus.PROCESSING or (stale_only and not _is_stale(job)):
        return 0
    if job.attempts >= settings.STUDIO_MAX_ATTEMPTS:
        job.status, job.error, job.finished_at = JobStatus.FAILED, _gave_up(job), timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        log.warning("Job %s failed after %d attempts", job.pk, job.attempts)
        ImagePreview.objects.filter(job=job).delete()  # its worker died before it could clear them
        _dispatch_after(job.pk)
        return 1
    job.status = JobStatus.QUEUED
    job.error = f"Worker {job.worker} stopped while running this job; requeued (attempt {job.attempts + 1})."
    job.save(update_fields=["status", "error"])
    log.warning("Requeued job %s from stopped worker %s", job.pk, job.worker)
    transaction.on_commit(lambda: job_enqueue(job.pk))
    return 1
