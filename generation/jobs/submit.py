"""What designers submit: a job, its follow-ups (more, vary, retry, repaint, extend, edit) and groups
(compare, batch), each checked against the per-user limits and queued after commit."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from PIL import Image

from ..control.edit import edit_models, edit_problem
from ..control.inpaint import inpaint_problem, mask_note
from ..control.inputs import store_image
from ..control.outpaint import MAX_SHARE, SIDES, canvas_and_mask, extended_size
from ..control.sketch import sketch_params, sketch_problem
from ..engine.families import size_multiple
from ..models import AssetPreset, GeneratedImage, GenerationJob, GroupKind, ImageModel, InputImage, JobGroup, Quality
from ..uploads import UploadError
from .lifecycle import dispatch
from .limits import within_limits
from .recipe import (
    VARIATION_STRENGTH,
    brand_references_for,
    new_seeds,
    params_from_image,
    reference_params,
    resolve_params,
)


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
    elif brand_references and sketch is None and (defaults := brand_references_for(preset, model)):
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
    dispatch(user_id=owner.pk)  # in the submission's transaction: the jobs it sends go to the broker after commit
    return job


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
    job, model = image.job, _inpaint_model(image)
    try:
        note = mask_note(mask, image, (job.params["width"], job.params["height"]))
    except UploadError as exc:
        raise ValidationError(str(exc)) from None
    params = params_from_image(image, model, prompt, variations, masked=True)
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
    params = params_from_image(image, model, prompt, variations, size=(width, height), masked=True)
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
    job, owner = image.job, image.job.owner
    if model is None:
        own = ImageModel.objects.filter(key=job.model_key).first()
        model = own if own is not None and own.supports_edit else next(iter(edit_models(owner)), None)
    if problem := edit_problem(owner, model):
        raise ValidationError(problem)
    assert model is not None
    params = params_from_image(image, model, instruction, variations)
    params["prompt"] = " ".join(instruction.split())  # an instruction, not a subject for the template
    params["edit"] = {"of": str(image.pk), "of_seed": image.seed, "instruction": instruction, "file": image.file.name}
    return _job_on(image, model, instruction, params, variations)


def _inpaint_model(image: GeneratedImage) -> ImageModel:
    """The model that made the image, where it can repaint (ValidationError naming those that can)."""
    model = ImageModel.objects.filter(key=image.job.model_key).first()
    if model is None:
        raise ValidationError("The model that made this image is no longer installed.")
    if problem := inpaint_problem(model):
        raise ValidationError(problem)
    return model


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
        dispatch(user_id=job.owner_id)
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
        dispatch(user_id=job.owner_id)
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
