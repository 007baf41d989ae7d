"""How well the demo brand model draws what it was taught (scripts/demo_model_quality.py, tests).

Every subject on its card is asked for in a brand colour; each drawing's ink is cropped, fitted
to a square and compared by IoU with every subject's reference glyph (shipped on the card, so
no icon package is needed): the drawing counts as right when the nearest reference is the
subject asked for. Judged at the model's native size (the engine's own render) and, through the
studio's worker code, at the size the studio delivers (`delivered`, see the script).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image

from ..engine import engine_class
from ..engine.types import GenerationRequest
from .demo_kit import BACKGROUND, PALETTE, caption, card_references, judge_glyph, read_kit_card
from .demo_model import MODEL_OPTIONS

# The Icon asset type's template, as the studio sends prompts to the model.
ICON_TEMPLATE = (
    "{subject}, Fluent 2 design icon, minimal vector style, solid background, clean geometric shapes, "
    "professional UI icon, Microsoft design language, subtle gradients, centered composition, high contrast"
)

# Other words for the same asks, none of them a training caption (filled with a subject, a colour).
REPHRASINGS = [
    "{subject}, {colour}",
    "an icon of a {colour} {subject}",
    "{colour} {subject} symbol",
    "a {subject} in {colour}",
    "simple {colour} {subject} glyph",
]
REPHRASED_COUNT = 20


@dataclass(frozen=True)
class Ask:
    subject: str
    colour: str
    prompt: str
    rephrased: bool = False


@dataclass
class Drawing:
    ask: Ask
    nearest: str | None
    colour: str | None
    iou: float  # with the asked subject's reference
    compliance: float | None = None  # palette compliance of the model's drawing, where measured
    compliance_after: float | None = None  # after the studio's palette correction


@dataclass
class Score:
    drawings: list[Drawing] = field(default_factory=list)

    def _share(self, hits: Iterable[bool]) -> float:
        values = list(hits)
        return sum(values) / len(values) if values else 0.0

    @property
    def nearest_accuracy(self) -> float:
        return self._share(d.nearest == d.ask.subject for d in self.drawings)

    @property
    def colour_accuracy(self) -> float:
        return self._share(d.colour == d.ask.colour for d in self.drawings)

    @property
    def mean_iou(self) -> float:
        return sum(d.iou for d in self.drawings) / len(self.drawings) if self.drawings else 0.0

    @property
    def compliance(self) -> float | None:
        return _mean(d.compliance for d in self.drawings)

    @property
    def compliance_after(self) -> float | None:
        return _mean(d.compliance_after for d in self.drawings)

    def subjects_right(self) -> dict[str, float]:
        """Per subject, the share of its drawings nearest to it."""
        by: dict[str, list[bool]] = {}
        for d in self.drawings:
            by.setdefault(d.ask.subject, []).append(d.nearest == d.ask.subject)
        return {subject: sum(hits) / len(hits) for subject, hits in by.items()}

    def summary(self) -> dict[str, Any]:
        return {
            "images": len(self.drawings),
            "nearest_accuracy": round(self.nearest_accuracy, 4),
            "colour_accuracy": round(self.colour_accuracy, 4),
            "mean_iou": round(self.mean_iou, 4),
            "compliance": _round(self.compliance),
            "compliance_after": _round(self.compliance_after),
        }


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def card_of(folder: Path) -> dict[str, Any]:
    card = read_kit_card(folder)
    if card is None:
        raise ValueError(f"{folder} has no demo-kit.json: it is not a demo model trained on the glyph kit")
    return card


def asks(card: dict[str, Any]) -> list[Ask]:
    """Every subject once, colours taken in turn (each colour asked for about equally)."""
    colours = list(PALETTE)
    return [
        Ask(s, colours[n % len(colours)], caption(colours[n % len(colours)], s)) for n, s in enumerate(card["subjects"])
    ]


def rephrased_asks(card: dict[str, Any], count: int = REPHRASED_COUNT) -> list[Ask]:
    """`count` asks in other words, spread over the card's subjects."""
    subjects, colours = list(card["subjects"]), list(PALETTE)
    step = max(1, len(subjects) // count)
    result = []
    for n in range(count):
        subject, colour = subjects[(n * step) % len(subjects)], colours[(n + 1) % len(colours)]
        result.append(
            Ask(subject, colour, REPHRASINGS[n % len(REPHRASINGS)].format(subject=subject, colour=colour), True)
        )
    return result


def judge_drawing(image: Image.Image, ask: Ask, references: dict[str, Any], **compliance: float | None) -> Drawing:
    verdict = judge_glyph(on_background(image), references)
    return Drawing(ask, verdict.nearest, verdict.colour, verdict.ious.get(ask.subject, 0.0), **compliance)


def on_background(image: Image.Image) -> Image.Image:
    """A cut-out (transparent) icon composited on the kit's background, as it was drawn."""
    if image.mode in ("RGBA", "LA"):
        backdrop = Image.new("RGBA", image.size, BACKGROUND + (255,))
        return Image.alpha_composite(backdrop, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def native(folder: Path, items: list[Ask], *, seeds: int = 2, steps: int = 28) -> Iterator[tuple[Ask, Image.Image]]:
    """The engine's own renders, at the model's native size, as the Icon asset type prompts it."""
    engine = engine_class("flux")(folder, device="cpu", options=MODEL_OPTIONS)
    size = int(MODEL_OPTIONS["native_size"])
    for ask in items:
        request = GenerationRequest(
            prompt=ICON_TEMPLATE.replace("{subject}", ask.prompt),
            negative_prompt="",
            width=size,
            height=size,
            steps=steps,
            guidance_scale=3.5,
            seeds=list(range(seeds)),
        )
        drawn: list[Image.Image] = []
        engine.generate(request, max_batch=seeds, on_step=_quiet, on_images=partial(_collect, drawn))
        for image in drawn:
            yield ask, image


def _collect(into: list[Image.Image], first: int, images: list[Image.Image]) -> None:
    into.extend(images)


def _quiet(step: int, total: int) -> None:
    pass


def evaluate_native(folder: Path, *, seeds: int = 2, steps: int = 28, rephrased: bool = True) -> tuple[Score, Score]:
    """(subjects, rephrasings) judged at the native size."""
    card = card_of(folder)
    references = card_references(card)
    plain, other = Score(), Score()
    items = asks(card) + (rephrased_asks(card) if rephrased else [])
    for ask, image in native(folder, items, seeds=seeds, steps=steps):
        (other if ask.rephrased else plain).drawings.append(judge_drawing(image, ask, references))
    return plain, other


def job_images(
    owner: Any, prompt: str, *, seeds: int, worker: str, model_key: str = "demo-brand", brand_lora: str = ""
) -> list[tuple[Any, Image.Image]]:
    """An Icon job at Standard run in this process as a worker runs it (upscale, palette,
    cut-out): its stored images with each opened. `brand_lora` as the job form takes it."""
    # Django models: the scripts import this module before django.setup().
    from ..jobs.submit import job_create
    from ..models import AssetPreset, GenerationJob, ImageModel
    from ..worker.run import run_job

    model = ImageModel.objects.get(key=model_key)
    preset = AssetPreset.objects.get(slug="icon")
    job = job_create(owner=owner, preset=preset, prompt=prompt, model=model, variations=seeds, brand_lora=brand_lora)
    run_job(str(job.pk), worker=worker)
    job = GenerationJob.objects.get(pk=job.pk)
    if job.status != "complete":
        raise RuntimeError(f"{prompt!r}: job {job.status}: {job.error}")
    opened: list[tuple[Any, Image.Image]] = []
    for stored in job.images.order_by("index"):
        with stored.file.open("rb") as fh:
            image = Image.open(fh)
            image.load()
        opened.append((stored, image))
    return opened


def contact_sheet(images: list[Image.Image], per_row: int, path: Path, cell: int = 64) -> None:
    rows = (len(images) + per_row - 1) // per_row
    canvas = Image.new("RGB", (cell * per_row, cell * rows), "white")
    for i, image in enumerate(images):
        canvas.paste(
            on_background(image).resize((cell, cell), Image.Resampling.LANCZOS),
            ((i % per_row) * cell, (i // per_row) * cell),
        )
    canvas.save(path)
