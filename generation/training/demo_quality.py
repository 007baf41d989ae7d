"""Scoring the demo brand model on the fixed demo prompts (scripts/demo_model_quality.py and a test)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..engine import engine_class
from ..engine.types import GenerationRequest
from .demo_kit import DEMO_PROMPTS, judge
from .demo_model import MODEL_OPTIONS

# The Icon asset type's template, as the studio sends prompts to the model.
ICON_TEMPLATE = (
    "{subject}, Fluent 2 design icon, minimal vector style, solid background, clean geometric shapes, "
    "professional UI icon, Microsoft design language, subtle gradients, centered composition, high contrast"
)


@dataclass
class Row:
    prompt: str
    total: int = 0
    colour_hits: int = 0
    shape_hits: int = 0
    both: int = 0
    palette_sum: float = 0.0

    @property
    def on_palette(self) -> float:
        return self.palette_sum / self.total if self.total else 0.0


@dataclass
class Result:
    rows: list[Row] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(r.total for r in self.rows)

    def _rate(self, attr: str) -> float:
        return sum(getattr(r, attr) for r in self.rows) / self.total if self.total else 0.0

    @property
    def colour_rate(self) -> float:
        return self._rate("colour_hits")

    @property
    def shape_rate(self) -> float:
        return self._rate("shape_hits")

    @property
    def both_rate(self) -> float:
        return self._rate("both")

    @property
    def on_palette(self) -> float:
        return self._rate("palette_sum")


def evaluate(folder: Path, *, seeds: int = 4, size: int = 512, steps: int = 28, sheet: Path | None = None) -> Result:
    engine = engine_class("flux")(folder, device="cpu", options=MODEL_OPTIONS)
    result = Result()
    images: list[Image.Image] = []
    for colour, shape, prompt in DEMO_PROMPTS:
        row = Row(prompt)
        request = GenerationRequest(
            prompt=ICON_TEMPLATE.replace("{subject}", prompt),
            negative_prompt="",
            width=size,
            height=size,
            steps=steps,
            guidance_scale=3.5,
            seeds=list(range(seeds)),
        )
        drawn = _render(engine, request)
        for image in drawn:
            verdict = judge(image.resize((64, 64), Image.Resampling.LANCZOS))
            row.total += 1
            row.colour_hits += verdict.colour == colour
            row.shape_hits += verdict.shape == shape
            row.both += verdict.colour == colour and verdict.shape == shape
            row.palette_sum += verdict.on_palette
        images.extend(drawn)
        result.rows.append(row)
    if sheet:
        _contact_sheet(images, seeds, sheet)
    return result


def _render(engine: object, request: GenerationRequest) -> list[Image.Image]:
    drawn: list[Image.Image] = []
    engine.generate(  # type: ignore[attr-defined]
        request, max_batch=len(request.seeds), on_step=lambda s, t: None, on_images=lambda f, i: drawn.extend(i)
    )
    return drawn


def _contact_sheet(images: list[Image.Image], per_row: int, path: Path, cell: int = 96) -> None:
    rows = (len(images) + per_row - 1) // per_row
    canvas = Image.new("RGB", (cell * per_row * 4, cell * ((rows + 3) // 4)), "white")
    for i, image in enumerate(images):
        prompt_index, seed = divmod(i, per_row)
        x = (prompt_index % 4) * per_row + seed
        y = prompt_index // 4
        canvas.paste(image.resize((cell, cell), Image.Resampling.LANCZOS), (x * cell, y * cell))
    canvas.save(path)
