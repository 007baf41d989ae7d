"""What the worker and the adapters agree on. Plain Python: no torch here."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from PIL.Image import Image


# An absolute path of two or more parts (not "3/4"): what a library's error message may name.
_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\](?:[^\s/\\'\"]+[/\\])+([^\s/\\'\",;:)]*)")


def without_paths(text: str) -> str:
    """A message for designers: server paths cut down to the file's name."""
    return _PATH.sub(lambda m: m.group(1) or "…", text)


class EngineError(Exception):
    """A failure with a message meant for the designer (model missing, bad size...)."""


class OutOfMemory(EngineError):
    pass


class Cancelled(EngineError):
    pass


@dataclass(frozen=True)
class LoraSpec:
    path: Path
    strength: float


@dataclass(frozen=True)
class ControlNetSpec:
    folder: Path  # a diffusers ControlNet folder for the family


@dataclass(frozen=True)
class IPAdapterSpec:
    folder: Path  # holds the weights and image_encoder/
    weight_name: str


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    guidance_scale: float
    seeds: list[int]
    loras: list[LoraSpec] = field(default_factory=list)
    # "More like this": start from this image instead of pure noise; `strength` is how far
    # from it the result may go (0 = the same image, 1 = ignore it).
    init_image: Image | None = None
    strength: float = 1.0
    # Inpaint: repaint where this mask ("L", white) is, keep init_image elsewhere.
    mask_image: Image | None = None
    # Style references through an IP-Adapter add-on: the images, how strongly, and the add-on.
    references: list[Image] = field(default_factory=list)
    reference_strength: float = 0.6
    ip_adapter: IPAdapterSpec | None = None
    # A sketch's structure through a ControlNet add-on: every step follows this image.
    control_image: Image | None = None
    # "canny": the engine finds the image's edges at the size the model draws (a small model's
    # render is smaller than the job; edges found first would fade when it is shrunk).
    # "depth": the engine estimates the image's depth with the depth model in `depth_estimator`.
    control_edges: str = ""
    depth_estimator: Path | None = None
    control_scale: float = 1.0
    controlnet: ControlNetSpec | None = None
    # Instruction edit: the image(s) the prompt's instruction changes, given to the pipeline itself.
    edit_images: list[Image] = field(default_factory=list)
    # The job's quality tier: which step cache its model's speed profile runs it with.
    quality: str = "standard"


# on_step(step, total_steps) is called after every denoising step; raise Cancelled to stop.
StepCallback = Callable[[int, int], None]
# on_images(first_index, images) is called as each batch finishes, so images are stored early.
ImagesCallback = Callable[[int, "list[Image]"], None]
# on_preview(first_index, draw) is called after every step (after on_step) while a batch runs;
# draw() returns the batch's images as they stand, small. The caller calls it only when it wants
# previews, so steps without one cost nothing. Raise Cancelled to stop, as in on_step.
PreviewCallback = Callable[[int, Callable[[], "list[Image]"]], None]


class Engine(Protocol):
    family: str
    supports_img2img: bool

    def __init__(
        self,
        path: Path,
        *,
        device: str,
        options: dict[str, Any] | None = None,
        plan: dict[str, Any] | None = None,
        speed: dict[str, Any] | None = None,
    ) -> None: ...

    plan: dict[str, Any] | None  # the memory plan it loaded with (generation/memory/plan.py)

    @property
    def memory_bytes(self) -> int:
        """What the loaded weights take (parameters and buffers), for the worker's budget."""
        ...

    def unread_addons(self, request: GenerationRequest) -> list[Path]:
        """The folders of the request's add-ons (ControlNet, IP-Adapter) not read yet."""
        ...

    def unload(self) -> None: ...

    def speed_record(self, quality: str) -> dict[str, Any]:
        """How a job of this quality tier runs: compiled, attention backend, step cache, hot-swap."""
        ...

    def prompt_notes(self, prompt: str, *, typed: tuple[int, int] | None = None) -> list[str]:
        """What of the prompt (within `typed`, when given) the text encoders cut off."""
        ...

    def generate(
        self,
        request: GenerationRequest,
        *,
        max_batch: int,
        on_step: StepCallback,
        on_images: ImagesCallback,
        on_preview: PreviewCallback | None = None,
    ) -> None: ...
