"""What a job's finishing will do, decided at submission and frozen into the job's params
(`params["finishing"]`), so the worker, the image page and Reuse settings all read one record.
`planner` makes it from the asset type, the tier and the model.

Web-safe: no numpy, no torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Palette:
    colours: tuple[str, ...]  # "#rrggbb"
    background: str  # "#rrggbb", or "" when the asset type names none
    tolerance: float  # ΔE2000: a pixel this close to a colour (or the background) is on-brand


@dataclass(frozen=True)
class UpscalerRef:
    """The upscaler file a job uses, as it was when the job was submitted."""

    key: str
    name: str
    file: str  # relative to STUDIO_UPSCALERS_DIR
    scale: int
    architecture: str
    half: bool


@dataclass(frozen=True)
class Plan:
    output_size: tuple[int, int]  # the finished image's size: the size asked × the tier's upscale
    upscale: int = 1  # the tier's factor (High 2, Ultra 4) on top of the size asked
    upscaler: UpscalerRef | None = None  # None: Lanczos, recorded as such
    refine_strength: float | None = None  # None: no refiner pass
    palette: Palette | None = None  # None: no score, no correction
    correct: bool = False
    sharpen_radius: float = 0.0
    sharpen_amount: int = 0  # percent; 0: off
    transparent: bool = False
    svg: bool = False
    floor: float | None = None  # compliance below this is flagged in the grid
    # The kit's icon canvas: the subject (what is further than `canvas_tolerance` from the
    # background) centred, this share of each side left empty; 0: as drawn. The background is
    # kept apart from the palette: a kit may have a background and no palette.
    safe_area: float = 0.0
    background: str = ""
    canvas_tolerance: float = 10.0
    notes: tuple[str, ...] = field(default=())  # what the designer should know, e.g. "no upscaler installed"

    def to_params(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_params(cls, data: dict[str, Any]) -> Plan:
        data = dict(data)
        data["output_size"] = tuple(data["output_size"])
        data["notes"] = tuple(data.get("notes", ()))
        if data.get("upscaler"):
            data["upscaler"] = UpscalerRef(**data["upscaler"])
        if data.get("palette"):
            p = data["palette"]
            data["palette"] = Palette(tuple(p["colours"]), p["background"], float(p["tolerance"]))
        return cls(**data)

    @property
    def sharpen(self) -> bool:
        return self.sharpen_amount > 0 and self.sharpen_radius > 0
