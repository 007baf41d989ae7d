"""A LoRA training run inside a worker: the set's images and captions, the base model's
pipeline, peft adapters on its transformer (or UNet), the family's objective; progress, loss,
samples and checkpoints as it goes; a versioned LoRA file plus metadata at the end.

Each family in `objectives/` trains (FLUX.1, SD3.5, SDXL, FLUX.2 [klein], Z-Image, Qwen-Image,
HiDream-I1: one module each holds what differs); other families fail at once with a message
saying so. The run's memory plan chooses the memory savers (`savers.py` applies them).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import random
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageOps

from ..engine.devices import resolve_device
from ..engine.prompts import cut_notes, readers
from ..engine.types import EngineError
from ..finishing.planner import palette_of
from ..model_files import local_weights
from ..models import BrandLora, ImageModel, JobStatus, TrainingImage, TrainingRun
from . import drift
from .objectives import OBJECTIVES, Objective
from .savers import Savers

log = logging.getLogger(__name__)

SAMPLE_SEED = 1234
PRIOR_SEED = 4321  # the prior-preservation drawings' seeds (same ones after a resume)


class Stopped(Exception):
    """The run was cancelled, or another worker holds it."""


def run_training(run_id: str, *, worker: str) -> None:
    run = _claim(run_id, worker)
    if run is None:
        return
    try:
        Trainer(run).train()
    except Stopped:
        log.info("Training run %s stopped", run_id)
    except EngineError as exc:
        _fail(run, str(exc))
    except Exception as exc:
        log.exception("Training run %s failed", run_id)
        _fail(run, f"Training failed: {exc.__class__.__name__}: {exc}")


@transaction.atomic
def _claim(run_id: str, worker: str) -> TrainingRun | None:
    run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None or run.status != JobStatus.QUEUED:
        return None  # ended, cancelled, or already running elsewhere
    run.status, run.worker, run.error = JobStatus.PROCESSING, worker, ""
    run.started_at = run.heartbeat_at = timezone.now()
    run.save(update_fields=["status", "worker", "error", "started_at", "heartbeat_at"])
    return run


def _fail(run: TrainingRun, reason: str) -> None:
    kept = f" The last checkpoint (step {run.step}) is kept: Resume continues from it." if run.checkpoint else ""
    TrainingRun.objects.filter(pk=run.pk, status=JobStatus.PROCESSING).update(
        status=JobStatus.FAILED, error=(reason + kept)[:2000], finished_at=timezone.now()
    )


class Trainer:
    def __init__(self, run: TrainingRun) -> None:
        self.run = run
        self.p = run.params
        self.training_set = run.training_set
        self.preset = self.training_set.preset
        model = ImageModel.objects.filter(key=run.model_key).first()
        if model is None:
            raise EngineError(f"Model {run.model_key!r} is not configured on this studio.")
        self.model: ImageModel = model
        if self.model.family not in OBJECTIVES:
            family, trainable = self.model.get_family_display(), ", ".join(sorted(OBJECTIVES))
            raise EngineError(f"Training {family} LoRAs is not supported yet (families that train: {trainable}).")
        self.device = resolve_device(settings.STUDIO_DEVICE)
        self.losses: list[list[float]] = list(run.losses)
        self.last_save = 0.0

    # --- the run

    def train(self) -> None:
        objective_class = OBJECTIVES[self.model.family]
        savers = self.savers = Savers(self.run.memory_plan, self.device)
        pipe = objective_class.load(
            local_weights(self.model), self.model.options, **savers.load_kwargs(objective_class.network)
        )
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe
        length = int(self.model.options.get("max_sequence_length", objective_class.default_sequence_length))
        self.objective: Objective = objective_class(pipe, max_sequence_length=length)
        savers.before_encoding(pipe)
        buckets, captions, content = self._dataset()
        TrainingRun.objects.filter(pk=self.run.pk).update(content_hash=content, total_steps=self.p["steps"])
        network = self.objective.model
        network.requires_grad_(False)
        savers.before_training(pipe, network)
        from peft import LoraConfig

        network.add_adapter(
            LoraConfig(
                r=self.p["rank"],
                lora_alpha=self.p["rank"],
                init_lora_weights="gaussian",
                target_modules=self.objective.lora_targets,
            )
        )
        prior = self._prior_latents()  # drawn now, while the new adapter adds nothing (its B is zero)
        params = [p for p in network.parameters() if p.requires_grad]
        optimizer = savers.optimizer(params, self.p["learning_rate"])
        start = self._resume(optimizer)
        if start == 0 and not any(sample["step"] == 0 for sample in self.run.samples):
            self._samples(0)  # the base model's own (a new adapter adds nothing): what drift is judged against
        generator = torch.Generator().manual_seed(self.p["seed"] + start)
        chooser = random.Random(self.p["seed"] + start)
        sizes = list(buckets)
        weights = [len(buckets[s]) for s in sizes]
        network.train()
        for step in range(start + 1, self.p["steps"] + 1):
            size = chooser.choices(sizes, weights)[0]
            rows = [chooser.choice(buckets[size]) for _ in range(self.p["batch_size"])]
            latents = torch.stack([self.latents[i] for i in rows])
            dropped = [chooser.random() < self.p["caption_dropout"] for _ in rows]
            picks = torch.tensor([0 if drop else captions[i] for i, drop in zip(rows, dropped, strict=True)])
            loss = self.objective.loss(latents, self.embeddings, picks, generator)
            if prior is not None:  # prior preservation: the base model's own drawings, as it drew them
                drawn = [chooser.randrange(len(prior)) for _ in range(max(1, self.p["batch_size"] // 2))]
                captioned = torch.tensor([self.prior_captions[i] for i in drawn])
                prior_loss = self.objective.loss(prior[drawn], self.embeddings, captioned, generator)
                loss = loss + self.p["prior_weight"] * prior_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            self._progress(step, loss.item())
            if step % self.p["sample_every"] == 0 or step == self.p["steps"]:
                self._samples(step)
            if step % self.p["checkpoint_every"] == 0 and step < self.p["steps"]:
                self._checkpoint(step, optimizer)
        self._finish()

    # --- data

    def _dataset(self) -> tuple[dict[tuple[int, int], list[int]], list[int], str]:
        """Latents grouped by size bucket, a caption index per image, and the content hash."""
        rows = list(TrainingImage.objects.filter(pk__in=self.p["images"]).order_by("pk"))
        if not rows:
            raise EngineError("The training set has no images left to train on.")
        digest = hashlib.sha256()
        pixels: list[torch.Tensor] = []
        buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
        texts = [""]  # index 0: the empty caption (caption dropout)
        caption_index: list[int] = []
        for i, row in enumerate(rows):
            with row.file.open("rb") as fh:
                data = fh.read()
            digest.update(data + b"\0" + row.caption.encode() + b"\0")
            image = Image.open(io.BytesIO(data)).convert("RGB")
            size = bucket_size(image.width, image.height, self.p["resolution"])
            pixels.append(_to_tensor(ImageOps.fit(image, size, Image.Resampling.LANCZOS)))
            buckets[size].append(i)
            texts.append(self._caption(row.caption))
            caption_index.append(len(texts) - 1)
        self._note_cut_captions(texts[1:])
        self.prior_captions = []
        for prompt in self._prior_prompts():
            texts.append(prompt)
            self.prior_captions.append(len(texts) - 1)
        self.latents = [self.objective.latents(t.unsqueeze(0))[0] for t in pixels]
        self.embeddings = self.savers.on_card(self.objective.embed(texts))
        return dict(buckets), caption_index, digest.hexdigest()

    def _prior_prompts(self) -> list[str]:
        """Prompts for prior preservation: the asset type's test prompts in turn, through its
        template and without the trigger word (what the base model should still draw as before)."""
        prompts = self.preset.test_prompts or ["a simple icon"]
        count = int(self.p.get("prior_images", 0))
        return [self.preset.expand_prompt(prompts[i % len(prompts)]) for i in range(count)]

    def _prior_latents(self) -> torch.Tensor | None:
        """The base model's drawings of the prior prompts, at the training size, as latents."""
        prompts = self._prior_prompts()
        if not prompts:
            return None
        pixels = [_to_tensor(self._draw(prompt, PRIOR_SEED + i)) for i, prompt in enumerate(prompts)]
        return torch.stack([self.objective.latents(t.unsqueeze(0))[0] for t in pixels])

    def _draw(self, prompt: str, seed: int) -> Image.Image:
        """One square image at the training size, as the model (with the adapter as it stands) draws it."""
        width, height = bucket_size(1, 1, self.p["resolution"])
        kwargs = self.objective.sample_kwargs()
        if self.model.default_guidance is not None:  # a distilled model's own (Z-Image Turbo, HiDream Dev: 0)
            kwargs["guidance_scale"] = self.model.default_guidance
        with torch.inference_mode():
            image = self.pipe(
                prompt=prompt,
                width=width,
                height=height,
                num_inference_steps=self.p["sample_steps"],
                generator=torch.Generator("cpu").manual_seed(seed),
                **kwargs,
            ).images[0]
        # HiDream draws about 1 MP whatever size it is asked: samples and prior drawings train at the run's.
        return image if image.size == (width, height) else image.resize((width, height), Image.Resampling.LANCZOS)

    def _note_cut_captions(self, texts: list[str]) -> None:
        """Tell the run page when the encoders cut captions as trained (and so as prompted)."""
        encoders = readers(self.model.family, self.pipe, self.objective.max_sequence_length)
        unique = list(dict.fromkeys(texts))
        cut = [notes[0] for text in unique if (notes := cut_notes(text, encoders))]
        note = (
            f"{len(cut)} of {len(unique)} captions, with the trigger word and through the {self.preset.name} "
            f"template as the studio prompts, are cut by the text encoder. For example: {cut[0]}"
            if cut
            else ""
        )
        TrainingRun.objects.filter(pk=self.run.pk).update(notes=([note] if note else []) + self.savers.notes)

    def _caption(self, caption: str) -> str:
        """A caption as the studio will prompt for it: the trigger word, then the caption through
        the asset type's template. Trained on the prompt shape it will be used with, the LoRA
        learns the template's words alongside the set's (and the encoders cut both alike)."""
        trigger = self.training_set.trigger_word.strip()
        prompt = self.preset.expand_prompt(caption)
        return f"{trigger}, {prompt}" if trigger else prompt

    # --- progress, samples, checkpoints

    def _progress(self, step: int, loss: float) -> None:
        self.losses.append([step, round(loss, 5)])
        now = time.monotonic()
        if now - self.last_save < 1.0 and step < self.p["steps"]:
            return
        self.last_save = now
        updated = TrainingRun.objects.filter(pk=self.run.pk, status=JobStatus.PROCESSING, worker=self.run.worker)
        if not updated.update(step=step, losses=_thin(self.losses), heartbeat_at=timezone.now()):
            raise Stopped()

    def _samples(self, step: int) -> None:
        """The asset type's test prompts, as the studio would send them, at fixed seeds; each
        judged against the base model's (step 0) for drift."""
        network = self.objective.model
        network.eval()
        files, looks = [], []
        for i, subject in enumerate(self.preset.test_prompts[:4] or ["a simple icon"]):
            image = self._draw(self._caption(subject), SAMPLE_SEED + i)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            name = default_storage.save(
                f"training/runs/{self.run.pk}/step{step:05d}-{i}.png", ContentFile(buffer.getvalue())
            )
            files.append({"file": name, "prompt": subject})
            looks.append(drift.look(image, palette_of(self.preset)))
        network.train()
        run = TrainingRun.objects.get(pk=self.run.pk)
        sample: dict[str, Any] = {"step": step, "images": files, "looks": looks}
        base = next((s for s in run.samples if s["step"] == 0), None)
        if step and base and base.get("looks"):
            found = drift.drift(base["looks"], looks)
            sample.update(drift=found, warning=drift.drift_note(step, found))
        run.samples = [*run.samples, sample]
        run.save(update_fields=["samples"])

    def _checkpoint(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        from peft.utils import get_peft_model_state_dict

        buffer = io.BytesIO()
        state = {
            "step": step,
            "lora": get_peft_model_state_dict(self.objective.model),
            "optimizer": optimizer.state_dict(),
        }
        torch.save(state, buffer)
        name = f"training/runs/{self.run.pk}/checkpoint.pt"
        if default_storage.exists(name):
            default_storage.delete(name)
        default_storage.save(name, ContentFile(buffer.getvalue()))
        running = TrainingRun.objects.filter(pk=self.run.pk, status=JobStatus.PROCESSING, worker=self.run.worker)
        if not running.update(checkpoint=name, step=step, losses=_thin(self.losses)):
            TrainingRun.objects.filter(pk=self.run.pk).update(checkpoint=name, step=step, losses=_thin(self.losses))
            raise Stopped()

    def _resume(self, optimizer: torch.optim.Optimizer) -> int:
        if not self.run.checkpoint or not default_storage.exists(self.run.checkpoint):
            self.losses = []
            return 0
        from peft.utils import set_peft_model_state_dict

        with default_storage.open(self.run.checkpoint, "rb") as fh:
            state = torch.load(io.BytesIO(fh.read()), weights_only=True)
        set_peft_model_state_dict(self.objective.model, state["lora"])
        optimizer.load_state_dict(state["optimizer"])
        self.losses = [pair for pair in self.losses if pair[0] <= state["step"]]
        log.info("Training run %s resumes after step %d", self.run.pk, state["step"])
        return int(state["step"])

    # --- the result

    def _finish(self) -> None:
        from peft.utils import get_peft_model_state_dict

        version = next_version(self.preset.pk, self.model.family)
        relative = f"{self.model.family}/{self.preset.slug}-v{version}.safetensors"
        target = Path(settings.STUDIO_LORA_ROOT) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            self.objective.save(Path(scratch), get_peft_model_state_dict(self.objective.model))
            shutil.move(str(Path(scratch) / "pytorch_lora_weights.safetensors"), target)
        target.chmod(0o644)  # as its .json beside it: the saver may write 0600, which shuts out other workers
        run = TrainingRun.objects.get(pk=self.run.pk)
        metadata = {
            "base_model": {"key": self.model.key, "source": self.model.source, "revision": self.model.revision},
            "training_set": {
                "id": self.training_set.pk,
                "name": self.training_set.name,
                "content_hash": run.content_hash,
            },
            "images": len(self.p["images"]),
            "params": self.p,
            "final_loss": float(np.mean([loss for _, loss in self.losses[-20:]])) if self.losses else None,
            "trigger_word": self.training_set.trigger_word,
            "run": str(run.pk),
        }
        target.with_suffix(".json").write_text(json.dumps(metadata, indent=2))
        with transaction.atomic():
            lora = BrandLora.objects.create(
                name=f"{self.preset.name} v{version}",
                family=self.model.family,
                file=relative,
                trigger_words=self.training_set.trigger_word,
                description=f"Trained on {self.training_set.name} ({len(self.p['images'])} images)",
                preset=self.preset,
                version=version,
                metadata=metadata,
                file_format="diffusers",
            )
            TrainingRun.objects.filter(pk=run.pk).update(
                status=JobStatus.COMPLETE,
                finished_at=timezone.now(),
                lora=lora,
                losses=_thin(self.losses),
                memory_plan=run.memory_plan | self.savers.measured(),
            )
        log.info("Training run %s wrote %s", run.pk, target)


def next_version(preset_id: int, family: str) -> int:
    latest = BrandLora.objects.filter(preset_id=preset_id, family=family).order_by("-version").first()
    return (latest.version or 0) + 1 if latest else 1


def bucket_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """A training size with about resolution² pixels, the image's aspect ratio, sides on a 16 px grid."""
    ratio = width / height
    w = (resolution * ratio**0.5) // 16 * 16
    h = (resolution / ratio**0.5) // 16 * 16
    return int(max(16, w)), int(max(16, h))


def _to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


def _thin(losses: list[list[float]], keep: int = 400) -> list[list[float]]:
    """At most `keep` points for the plot (every step is too many to store on long runs)."""
    if len(losses) <= keep:
        return losses
    stride = len(losses) / keep
    return [losses[int(i * stride)] for i in range(keep - 1)] + [losses[-1]]
