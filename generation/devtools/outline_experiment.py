"""The outline-style LoRA experiment (scripts/outline_lora_report.py; a test runs it small).

Everything a staff user does goes through the training pages (Django's test client, signed in as
staff); the run and the jobs run in this process through the worker's own code. It runs on the demo
model, or on a tiny random-weight pipeline of another trainable family (`install_tiny`).
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from numpy import asarray
from PIL import Image

from ..engine.families import FAMILIES
from ..model_files import local_weights
from ..models import AssetPreset, BrandLora, GenerationJob, ImageModel, TrainingRun, TrainingSet
from ..training.data import report
from ..training.lora import run_training
from ..worker.engines import load_engine
from ..worker.request import build_request
from . import glyphs
from .demo_kit import (
    BACKGROUND,
    GLYPH_SUBJECTS,
    PALETTE,
    caption,
    glyph_references,
    iou,
    judge_glyph,
    read_kit_card,
)
from .demo_model import write_kit_card
from .demo_quality import contact_sheet, job_images, on_background
from .tiny import TINY_BUILDERS

STYLE_WORDS = "outline style"
SET_SIDE = 512


@dataclass
class Experiment:
    train_subjects: int = 30
    colours_per_subject: int = 2  # each trained subject in this many brand colours (in turn): 60 icons
    seeds: int = 2
    overrides: dict[str, Any] = field(default_factory=dict)
    model_key: str = "demo-brand"
    measure_subjects: int | None = None  # the first this many of the card's (default: all)
    sheet: Path | None = None  # a contact sheet: each subject's first drawing without, then with, the LoRA
    drawn: dict[str, list[Image.Image]] = field(default_factory=dict, init=False)  # by brand_lora choice

    def run(self) -> dict[str, Any]:
        model = ImageModel.objects.get(key=self.model_key)
        card = read_kit_card(local_weights(model))
        if card is None:
            raise ValueError(f"{model.name} has no demo-kit.json: it was not trained on the glyph kit")
        subjects = list(card["subjects"])[: self.measure_subjects]
        trained = subjects[: self.train_subjects]
        staff = User.objects.create_user("outline-staff", is_staff=True)
        client = Client()
        client.force_login(staff)
        training_set = self._upload(client, trained, model.family)
        checked = report(training_set)
        run, seconds = self._train(client, training_set, model)
        lora = BrandLora.objects.get(training_run=run)
        response = client.post(f"/training/loras/{lora.pk}/publish/")
        assert response.status_code == 302, response.content[:500]
        measured = {
            "with_lora": self._measure(staff, model, subjects, trained, brand_lora=""),
            "without_lora": self._measure(staff, model, subjects, trained, brand_lora="none"),
        }
        if self.sheet:
            self._contact_sheet(len(subjects))
        return {
            "subjects": len(subjects),
            "trained_subjects": trained,
            "unseen_subjects": len(subjects) - len(trained),
            "set_images": training_set.images.count(),
            "report_score": checked.score,
            "run_params": {k: run.params[k] for k in ("steps", "rank", "learning_rate", "batch_size", "resolution")},
            "training_seconds": round(seconds, 1),
            "run_notes": run.notes,
            "drift": (run.samples[-1].get("drift") if run.samples else None),
            "drift_warning": (run.samples[-1].get("warning", "") if run.samples else ""),
            **measured,
            "closer_to_regular_with_lora": measured["with_lora"]["closer_to_regular"],
            "closer_to_regular_without_lora": measured["without_lora"]["closer_to_regular"],
            "closer_to_regular_unseen_with_lora": measured["with_lora"]["closer_to_regular_unseen"],
            "colour_right_with_lora": measured["with_lora"]["colour_right"],
            "colour_right_without_lora": measured["without_lora"]["colour_right"],
        }

    def _contact_sheet(self, count: int, per_row: int = 12) -> None:
        """Rows of `per_row` subjects without the LoRA, each above the same subjects with it."""
        assert self.sheet is not None
        without, with_lora = self.drawn["none"], self.drawn[""]
        cells = []
        for start in range(0, count, per_row):
            cells += without[start : start + per_row] + with_lora[start : start + per_row]
        contact_sheet(cells, per_row, self.sheet)

    def _upload(self, client: Client, subjects: list[str], family: str) -> TrainingSet:
        icon = AssetPreset.objects.get(slug="icon")
        form = {"name": "Fluent outline", "preset": icon.pk, "family": family, "trigger_word": ""}
        response = client.post("/training/", form)
        assert response.status_code == 302, response.content[-1500:]
        training_set = TrainingSet.objects.get(name="Fluent outline")
        upload = io.BytesIO(outline_zip(subjects, colours=self.colours_per_subject))
        upload.name = "fluent-outline.zip"
        response = client.post(training_set.get_absolute_url(), {"files": [upload]})
        assert response.status_code == 302, response.content[-1500:]
        return training_set

    def _train(self, client: Client, training_set: TrainingSet, model: ImageModel) -> tuple[TrainingRun, float]:
        form = {"model": model.pk, **{k: str(v) for k, v in self.overrides.items()}}
        response = client.post(training_set.get_absolute_url(), form)
        if response.status_code != 302:
            errors = re.findall(r'<ul class="errorlist[^"]*">(.*?)</ul>', response.content.decode(), re.S)
            raise RuntimeError(f"the run form was refused: {' '.join(errors) or response.status_code}")
        run = TrainingRun.objects.get(training_set=training_set)
        started = time.perf_counter()
        run_training(str(run.pk), worker="outline-report")
        run.refresh_from_db()
        if run.status != "complete":
            raise RuntimeError(f"the training run {run.status}: {run.error}")
        return run, time.perf_counter() - started

    def _measure(
        self, owner: User, model: ImageModel, subjects: list[str], trained: list[str], *, brand_lora: str
    ) -> dict[str, Any]:
        regular = glyph_references(subjects, style="regular")
        filled = glyph_references(subjects, style="filled")
        colours = list(PALETTE)
        rows = []
        firsts = self.drawn.setdefault(brand_lora, [])
        for n, subject in enumerate(subjects):
            colour = colours[n % len(colours)]
            prompt = f"{caption(colour, subject)}, {STYLE_WORDS}"
            drawn = job_images(
                owner, prompt, seeds=self.seeds, worker="outline-report", model_key=model.key, brand_lora=brand_lora
            )
            composited = [(stored, on_background(image)) for stored, image in drawn]
            firsts.append(composited[0][1])
            for stored, image in composited:
                rows.append(_row(image, subject, colour, regular, filled, stored.compliance_before))
        return _summarise(rows, set(trained))


def install_tiny(family: str, subjects: list[str], *, key: str = "") -> ImageModel:
    """A tiny random-weight pipeline of `family` (generation.devtools.tiny) under STUDIO_MODELS_DIR,
    with a kit card beside it listing `subjects` (what the experiment asks for), registered to train
    and draw at 64 px as the demo model does. It draws noise: what it shows is that the family's
    LoRA path (the pages, the trainer, the worker's loading) runs, not a style."""
    key = key or f"tiny-{family}-outline"
    folder = Path(settings.STUDIO_MODELS_DIR) / key
    if not (folder / "model_index.json").is_file():
        TINY_BUILDERS[family](folder)
    write_kit_card(folder, subjects)
    model = ImageModel.objects.filter(key=key).first() or ImageModel(key=key)
    model.name, model.family, model.local_path = f"Tiny {FAMILIES[family]['label']} (random weights)", family, key
    model.license_name, model.commercial_use, model.enabled = "demo", True, True
    model.options, model.subjects, model.for_testing = {"native_size": 64}, subjects, True
    model.full_clean()
    model.save()
    return model


def lora_change(model_key: str, *, count: int = 12) -> float:
    """How far the LoRA moves the drawings at the same seed (each job draws new seeds, so the
    experiment's with and without compare different noise too): the first `count` jobs that used it drawn again by
    the worker's engine with their own parameters and seeds, with and without it, as the mean
    absolute difference of the renders' pixels (0-255; 0: the LoRA changes nothing)."""

    engine = load_engine(model_key)
    jobs_run = GenerationJob.objects.filter(model_key=model_key).order_by("created_at")
    used = [job for job in jobs_run if job.params.get("loras")]
    differences = []
    for job in used[:count]:
        request = build_request(job)
        with_lora, without = (_render(engine, replace(request, loras=loras)) for loras in (request.loras, []))
        for a, b in zip(with_lora, without, strict=True):
            differences.append(float(abs(asarray(a, dtype=float) - asarray(b, dtype=float)).mean()))
    return round(sum(differences) / len(differences), 2) if differences else 0.0


def _render(engine: Any, request: Any) -> list[Image.Image]:
    images: list[Image.Image] = []
    engine.generate(
        request,
        max_batch=len(request.seeds),
        on_step=lambda step, total: None,
        on_images=lambda first, batch: images.extend(image.convert("RGB") for image in batch),
    )
    return images


def outline_zip(subjects: list[str], side: int = SET_SIDE, *, colours: int = 4) -> bytes:
    """The training set as a designer would hand it over: each subject's regular glyph in
    `colours` brand colours (the nth subject starting at the nth colour, so every colour is
    there as often), a PNG with a caption file beside it."""
    names = list(PALETTE)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n, subject in enumerate(subjects):
            alpha = glyphs.coverage(GLYPH_SUBJECTS[subject], "regular", size=side)
            if alpha is None:
                continue
            for colour in (names[(n + k) % len(names)] for k in range(colours)):
                stem = f"{subject.replace(' ', '-')}-{colour}"
                png = io.BytesIO()
                glyphs.paint(alpha, PALETTE[colour], BACKGROUND, size=side).save(png, format="PNG")
                archive.writestr(f"{stem}.png", png.getvalue())
                archive.writestr(f"{stem}.txt", f"{caption(colour, subject)}, {STYLE_WORDS}")
    return buffer.getvalue()


def _row(
    image: Image.Image,
    subject: str,
    colour: str,
    regular: dict[str, Any],
    filled: dict[str, Any],
    compliance: float | None,
) -> dict[str, Any]:
    verdict = judge_glyph(image, filled)
    probe = verdict.probe
    return {
        "subject": subject,
        "ink": verdict.ink,
        "iou_regular": iou(probe, regular[subject]) if probe is not None and subject in regular else 0.0,
        "iou_filled": verdict.ious.get(subject, 0.0),
        "colour_right": verdict.colour == colour,
        "compliance": compliance or 0.0,
    }


def _summarise(rows: list[dict[str, Any]], trained: set[str]) -> dict[str, Any]:
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_subject.setdefault(row["subject"], []).append(row)

    def mean(items: list[dict[str, Any]], key: str) -> float:
        return sum(float(r[key]) for r in items) / len(items) if items else 0.0

    closer = {s: mean(items, "iou_regular") > mean(items, "iou_filled") for s, items in by_subject.items()}
    unseen = [s for s in closer if s not in trained]
    return {
        "images": len(rows),
        "ink": round(mean(rows, "ink"), 4),
        "iou_regular": round(mean(rows, "iou_regular"), 4),
        "iou_filled": round(mean(rows, "iou_filled"), 4),
        "closer_to_regular": round(sum(closer.values()) / len(closer), 4) if closer else 0.0,
        "closer_to_regular_unseen": round(sum(closer[s] for s in unseen) / len(unseen), 4) if unseen else 0.0,
        "colour_right": round(mean(rows, "colour_right"), 4),
        "compliance": round(mean(rows, "compliance"), 4),
        "closer_by_subject": closer,
    }
