"""The generation engine: one adapter per model family, on torch and diffusers.

Adapters are found by family name through a registry of dotted paths, imported on first
use, so the web process (which only needs `types`, `families`, `options` and `edges`) never
loads torch. Torch is worker side: the adapters here, and what the worker runs beside them
(generation/worker/, training's trainer, finishing's refine and upscale, generation/devtools/).
"""

from django.utils.module_loading import import_string

from .types import Engine, EngineError

# family -> adapter class. One self-contained module per model family.
ENGINES: dict[str, str] = {
    "flux": "generation.engine.flux.FluxEngine",
    "fluxkontext": "generation.engine.flux_kontext.FluxKontextEngine",
    "sd3": "generation.engine.sd3.SD3Engine",
    "sdxl": "generation.engine.sdxl.SDXLEngine",
    "hidream": "generation.engine.hidream.HiDreamEngine",
    "flux2": "generation.engine.flux2.Flux2KleinEngine",
    "zimage": "generation.engine.zimage.ZImageEngine",
    "qwenimage": "generation.engine.qwenimage.QwenImageEngine",
    "qwenimageedit": "generation.engine.qwenimage_edit.QwenImageEditEngine",
    "chroma": "generation.engine.chroma.ChromaEngine",
    "flux2dev": "generation.engine.flux2.Flux2DevEngine",
}


def engine_class(family: str) -> type[Engine]:
    try:
        path = ENGINES[family]
    except KeyError:
        raise EngineError(f"No engine for model family {family!r}; known: {', '.join(sorted(ENGINES))}.") from None
    return import_string(path)


__all__ = ["ENGINES", "Engine", "EngineError", "engine_class"]
