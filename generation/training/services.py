"""Brand training writes that cross models or touch the queue: runs, publishing, comparing.

Web side (no torch). The run itself is `generation.training.lora`, in a worker.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from ..jobs import lifecycle
from ..jobs.limits import within_limits
from ..jobs.recipe import new_seeds
from ..jobs.submit import job_create
from ..models import (
    AddOn,
    AddOnKind,
    AssetPreset,
    BrandLora,
    GroupKind,
    ImageModel,
    JobGroup,
    JobStatus,
    PresetLora,
    TrainingRun,
    TrainingSet,
)
from .captions import progress as captioning
from .data import report
from .defaults import FAMILY_DEFAULTS, training_defaults
from .plans import PlanRefused, checked_plan

log = logging.getLogger(__name__)


class TrainingError(ValueError):
    """A run that cannot start, with the reason for the designer."""


def run_create(
    *, training_set: TrainingSet, model: ImageModel, user: User, overrides: dict[str, Any] | None = None
) -> TrainingRun:
    if model.family != training_set.family:
        raise TrainingError(f"{model.name} is {model.get_family_display()}; this set is for another family.")
    if model.family not in FAMILY_DEFAULTS:
        trainable = ", ".join(sorted(FAMILY_DEFAULTS))
        raise TrainingError(f"{model.get_family_display()} LoRAs cannot be trained here yet (these can: {trainable}).")
    checked = report(training_set)
    if checked.errors:
        raise TrainingError("Fix the report's errors first: " + " ".join(f.message for f in checked.errors))
    params = training_defaults(training_set, model) | {k: v for k, v in (overrides or {}).items() if v is not None}
    params["images"] = list(training_set.images.filter(excluded=False).values_list("pk", flat=True))
    try:
        memory_plan = checked_plan(model, params)
    except PlanRefused as exc:
        raise TrainingError(str(exc)) from None
    run = TrainingRun.objects.create(
        training_set=training_set,
        model_key=model.key,
        params=params,
        created_by=user,
        total_steps=params["steps"],
        memory_plan=memory_plan,
    )
    transaction.on_commit(lambda: run_enqueue(run.pk))
    return run


def run_enqueue(run_id: uuid.UUID) -> None:
    try:
        lifecycle.send_task(lifecycle.TRAIN, str(run_id))
    except Exception as exc:
        log.exception("Could not enqueue training run %s", run_id)
        TrainingRun.objects.filter(pk=run_id, status=JobStatus.QUEUED).update(
            status=JobStatus.FAILED, error=f"The job queue is unreachable ({exc.__class__.__name__})."
        )


def run_fail_to_start(run_id: str, exc: Exception) -> None:
    """A run whose worker could not even start it is failed with the reason, not left queued."""
    TrainingRun.objects.filter(pk=run_id, status=JobStatus.QUEUED).update(
        status=JobStatus.FAILED, error=f"The worker could not start training: {exc.__class__.__name__}: {exc}"
    )


def run_cancel(*, run: TrainingRun) -> None:
    TrainingRun.objects.filter(pk=run.pk, status__in=[JobStatus.QUEUED, JobStatus.PROCESSING]).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now()
    )


def run_resume(*, run: TrainingRun) -> None:
    """A failed or cancelled run goes back in the queue; it continues from its last checkpoint."""
    updated = TrainingRun.objects.filter(pk=run.pk, status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).update(
        status=JobStatus.QUEUED, error="", finished_at=None
    )
    if updated:
        transaction.on_commit(lambda: run_enqueue(run.pk))


def runs_reap_stale() -> int:
    """Runs whose worker stopped heart-beating are failed, keeping their checkpoint for Resume."""
    limit = timezone.now() - timedelta(seconds=settings.STUDIO_STALE_AFTER_SECONDS)
    stale = TrainingRun.objects.filter(status=JobStatus.PROCESSING, heartbeat_at__lt=limit)
    count = 0
    for run in stale:
        kept = f" Resume continues from step {run.step}." if run.checkpoint else ""
        count += TrainingRun.objects.filter(pk=run.pk, status=JobStatus.PROCESSING).update(
            status=JobStatus.FAILED,
            error=f"The worker {run.worker} stopped while training.{kept}",
            finished_at=timezone.now(),
        )
    return count


# --- captions the captioner writes (generation/training/captions/)

CAPTIONS = "generation.tasks.write_training_captions"


def captions_start(*, training_set: TrainingSet, captioner: AddOn, user: User) -> int:
    """Send the captioner over the set's included images that have no caption; how many those are."""
    if captioner.kind != AddOnKind.CAPTIONER or not captioner.enabled:
        raise TrainingError(f"{captioner.name} is not an enabled captioner.")
    with transaction.atomic():
        locked = TrainingSet.objects.select_for_update().get(pk=training_set.pk)
        current = captioning.progress_of(locked)
        if current is not None and current.active:
            raise TrainingError("The captioner is already on this set: wait for it, or stop it first.")
        missing = locked.images.filter(caption="", excluded=False).count()
        if not missing:
            raise TrainingError("Every included image has a caption: there is nothing to write.")
        token = uuid.uuid4().hex
        state = captioning.new_state(token=token, captioner=captioner, asked_by=user.get_username(), total=missing)
        TrainingSet.objects.filter(pk=locked.pk).update(captioning=state)
        transaction.on_commit(lambda: captions_enqueue(locked.pk, token))
    return missing


def captions_enqueue(set_id: int, token: str) -> None:
    try:
        lifecycle.send_task(CAPTIONS, set_id, token)
    except Exception as exc:
        log.exception("Could not enqueue the captions of training set %s", set_id)
        error = f"The job queue is unreachable ({exc.__class__.__name__}); start again once it is back."
        captioning.advance(set_id, token, status=captioning.FAILED, error=error)


def captions_fail_to_start(set_id: int, token: str, exc: Exception) -> None:
    """A pass whose worker could not even start it is failed with the reason, not left queued."""
    error = f"The worker could not start the captioner: {exc.__class__.__name__}: {exc}"[:500]
    captioning.advance(set_id, token, status=captioning.FAILED, error=error)


def captions_stop(*, training_set: TrainingSet) -> None:
    """Stop the set's pass: its worker finds its token gone at the next image (what it wrote stays)."""
    with transaction.atomic():
        locked = TrainingSet.objects.select_for_update().get(pk=training_set.pk)
        current = captioning.progress_of(locked)
        if current is None or current.status not in (captioning.QUEUED, captioning.RUNNING):
            return
        state = {
            **locked.captioning,
            "token": "",
            "status": captioning.STOPPED,
            "finished_at": timezone.now().isoformat(),
        }
        TrainingSet.objects.filter(pk=locked.pk).update(captioning=state)


# --- versions: publish, roll back, compare


def published_lora(preset: AssetPreset, family: str) -> BrandLora | None:
    link = preset.preset_loras.filter(lora__preset=preset, lora__family=family).select_related("lora").first()
    return link.lora if link else None


@transaction.atomic
def lora_publish(*, lora: BrandLora) -> None:
    """Make this trained version the one its asset type applies (rolling back is publishing an older one)."""
    if lora.preset is None:
        raise TrainingError("Only LoRA versions the studio trained for an asset type can be published here.")
    current = PresetLora.objects.filter(preset=lora.preset, lora__preset=lora.preset, lora__family=lora.family)
    strength = current.values_list("strength", flat=True).first() or 0.85
    current.delete()
    PresetLora.objects.create(preset=lora.preset, lora=lora, strength=strength)


def lora_compare(*, lora: BrandLora, owner: User, model: ImageModel) -> JobGroup:
    """The asset type's test prompts with the published version and with `lora`, same seeds."""
    if lora.preset is None:
        raise TrainingError("This LoRA was not trained for an asset type.")
    preset = lora.preset
    current = published_lora(preset, lora.family)
    if current is not None and current.pk == lora.pk:  # published already: what it does, against none
        current = None
    title = f"{preset.name}: {current.name if current else 'no LoRA'} vs {lora.name}"
    prompts = preset.test_prompts or ["a simple icon"]
    # Within the owner's limits like any submission, and in one transaction: each job reaches the
    # broker only after its LoRA was swapped in, never before.
    with within_limits(owner.pk, jobs=2 * len(prompts)):
        group = JobGroup.objects.create(owner=owner, kind=GroupKind.LORAS, title=title[:200])
        seed = new_seeds(1)[0]
        for prompt in prompts:
            for label, version in (("current", current), ("candidate", lora)):
                job = job_create(
                    owner=owner, preset=preset, prompt=prompt, model=model, variations=2, seed=seed, group=group
                )
                _use_version(job, version, label)
    return group


def _use_version(job: Any, version: BrandLora | None, label: str) -> None:
    """Swap the asset type's trained LoRA in the job's frozen parameters for `version`."""
    params = job.params
    loras = [entry for entry in params["loras"] if not entry.get("trained")]
    trained_names = set(BrandLora.objects.filter(preset=job.preset).values_list("name", flat=True))
    loras = [entry for entry in loras if entry["name"] not in trained_names]
    if version is not None:
        loras.append(
            {"name": version.name, "path": version.file, "strength": 0.85, "trigger_words": version.trigger_words}
        )
    params["loras"], params["lora_label"] = loras, f"{label}: {version.name if version else 'no LoRA'}"
    if version is not None and version.trigger_words and version.trigger_words not in params["prompt"]:
        params["prompt"] = f"{version.trigger_words}, {params['prompt']}"
    job.params = params
    job.save(update_fields=["params"])
