"""The captioner on a worker: a transformers image-text-to-text model read from its add-on's
folder (AutoProcessor and AutoModelForImageTextToText, local files only, no remote code) writes a
caption for each included image of a set that has none, in the set's words (terms.py).

How it is asked depends on the model: a chat turn with the set's instruction (Qwen2.5-VL,
Qwen3-VL and other instruction models, whose processor has a chat template), Florence-2's
detailed-caption task, or nothing at all (BLIP captions an image unprompted). Whatever it
answers, the set's words are applied after.

An image it fails on keeps its empty caption and says why (`caption_error`); the rest go on. A
caption a person wrote meanwhile is never written over.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import torch
from django.conf import settings
from django.utils import timezone
from PIL import Image, ImageOps
from transformers import AutoModelForImageTextToText, AutoProcessor

from ...engine.devices import default_dtype, free_memory, resolve_device
from ...models import AddOn, AddOnKind, TrainingImage, TrainingSet
from ...models.training import CaptionSource
from . import progress, terms
from .wording import wording_of

log = logging.getLogger(__name__)

MAX_NEW_TOKENS = 120
MAX_SIDE = 1024  # the largest side the captioner is shown; its own processor resizes from there
FLORENCE_TASK = "<DETAILED_CAPTION>"  # a sentence or two; <MORE_DETAILED_CAPTION> writes a paragraph


class CaptionerUnavailable(Exception):
    """The pass cannot start: the add-on is gone, or its folder does not load."""


class Captioner:
    """A captioner read from its folder, and how it is asked."""

    def __init__(self, folder: Path, device: torch.device) -> None:
        self.device, self.dtype = device, default_dtype(device)
        self.processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True, dtype=self.dtype)
        self.model = model.to(device).eval()
        self.model_type = str(getattr(model.config, "model_type", ""))

    def prompt(self, instruction: str) -> str | None:
        """The text beside the image (None: the image alone)."""
        if self.model_type == "florence2":
            return FLORENCE_TASK
        if getattr(self.processor, "chat_template", None):
            turn = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]}]
            return str(self.processor.apply_chat_template(turn, add_generation_prompt=True, tokenize=False))
        return None

    def caption(self, image: Image.Image, prompt: str | None) -> str:
        """What the model says of the image, greedy (the same image gives the same caption)."""
        asked: dict[str, Any] = {"images": image, "return_tensors": "pt"}
        if prompt is not None:
            asked["text"] = [prompt]
        inputs = self.processor(**asked)
        batch = {
            key: value.to(self.device, self.dtype) if torch.is_floating_point(value) else value.to(self.device)
            for key, value in inputs.items()
            if isinstance(value, torch.Tensor)
        }
        with torch.inference_mode():
            out = self.model.generate(**batch, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
        prompt_ids = batch.get("input_ids")
        # A decoder-only model's answer begins with the prompt; an encoder-decoder's (BLIP, Florence-2) does not.
        length = prompt_ids.shape[1] if prompt_ids is not None else 0
        if prompt_ids is not None and out.shape[1] >= length and torch.equal(out[0, :length], prompt_ids[0]):
            out = out[:, length:]
        return str(self.processor.batch_decode(out, skip_special_tokens=True)[0])

    def unload(self) -> None:
        del self.model
        gc.collect()
        free_memory(self.device)


def write_captions(set_id: int, token: str, *, worker: str) -> None:
    """The pass `token` over the set: a caption for each included image without one."""
    training_set = TrainingSet.objects.select_related("preset").filter(pk=set_id).first()
    if training_set is None or not progress.advance(set_id, token, status=progress.RUNNING, worker=worker):
        return  # the set is gone, or the pass was stopped or started again before it began
    captioner: Captioner | None = None
    try:
        addon = _addon(training_set)
        images = list(training_set.images.filter(caption="", excluded=False).order_by("pk"))
        progress.advance(set_id, token, total=len(images))
        captioner = _load(addon)
        _caption_all(captioner, training_set, images, token)
    except CaptionerUnavailable as exc:
        progress.advance(set_id, token, status=progress.FAILED, error=str(exc), finished_at=_now())
    except Exception as exc:  # a pass never stays "running": the page says what happened
        log.exception("Captioning training set %s failed", set_id)
        error = f"Captioning failed: {exc.__class__.__name__}: {exc}"[:500]
        progress.advance(set_id, token, status=progress.FAILED, error=error, finished_at=_now())
    finally:
        if captioner is not None:
            captioner.unload()


def _addon(training_set: TrainingSet) -> AddOn:
    chosen = (training_set.captioning or {}).get("captioner") or {}
    addon = AddOn.objects.filter(pk=chosen.get("id") or 0, kind=AddOnKind.CAPTIONER).first()
    if addon is None or not addon.enabled:
        name = chosen.get("name") or "The captioner"
        raise CaptionerUnavailable(f"{name} was removed or turned off in the admin; choose another.")
    return addon


def _load(addon: AddOn) -> Captioner:
    folder = addon.resolved_local_path
    try:
        return Captioner(folder, resolve_device(settings.STUDIO_DEVICE))
    except Exception as exc:
        log.exception("Could not load the captioner %s", addon.key)
        reason = f"{exc.__class__.__name__}: {exc}"[:300]
        raise CaptionerUnavailable(f"{addon.name} could not be loaded from {addon.local_path!r}: {reason}") from None


def _caption_all(captioner: Captioner, training_set: TrainingSet, images: list[TrainingImage], token: str) -> None:
    wording = wording_of(training_set)
    prompt = captioner.prompt(terms.instruction(wording))
    written = failed = 0
    first_error = ""
    for done, image in enumerate(images, start=1):
        if not progress.holds(training_set.pk, token):
            return  # stopped, or started again: what was written stays
        caption, error = _one(captioner, image, prompt, wording)
        if caption:
            # Only where the caption is still empty: one a person wrote meanwhile is kept.
            written += TrainingImage.objects.filter(pk=image.pk, caption="").update(
                caption=caption, caption_source=CaptionSource.CAPTIONER, caption_reviewed=False, caption_error=""
            )
        else:
            failed += 1
            first_error = first_error or error
            TrainingImage.objects.filter(pk=image.pk, caption="").update(caption_error=error)
        progress.advance(training_set.pk, token, done=done, written=written, failed=failed)
    if failed and not written:
        error = f"The captioner wrote no caption. The first image's reason: {first_error}"[:500]
        progress.advance(training_set.pk, token, status=progress.FAILED, error=error, finished_at=_now())
    else:
        progress.advance(training_set.pk, token, status=progress.DONE, finished_at=_now())


def _one(captioner: Captioner, image: TrainingImage, prompt: str | None, wording: terms.Wording) -> tuple[str, str]:
    """(caption, "") or ("", why not) for one image."""
    try:
        answer = captioner.caption(_picture(image), prompt)
    except Exception as exc:
        log.warning("The captioner failed on training image %s", image.pk, exc_info=True)
        return "", f"The captioner failed on this image: {exc.__class__.__name__}: {exc}"[:500]
    if caption := terms.finish(answer, wording):
        return caption, ""
    return "", f"The captioner's answer had nothing usable in it: {answer.strip()[:200]!r}"[:500]


def _picture(image: TrainingImage) -> Image.Image:
    """The image as the captioner is shown it: upright, over white where it is transparent (as
    icons often are: black would read as their background), at most MAX_SIDE a side."""
    with image.file.open("rb") as fh:
        picture = ImageOps.exif_transpose(Image.open(fh))
        picture.load()
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, "white")
        flat.alpha_composite(rgba)
        picture = flat
    picture = picture.convert("RGB")
    picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return picture


def _now() -> str:
    return timezone.now().isoformat()
