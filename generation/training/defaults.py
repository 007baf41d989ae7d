"""The training settings a run starts from: per family, per asset type, and the side a set trains at.
Reads only; the training form, the set's report and `run_create` share them."""

from __future__ import annotations

from typing import Any

from ..models import ImageModel, TrainingSet

# Defaults per family, then per asset type; the advanced section of the form overrides any.
# (The worker's generation.training.objectives has one objective per family listed here.)
_COMMON = {
    "batch_size": 1,
    "caption_dropout": 0.05,
    "prior_images": 0,
    "prior_weight": 1.0,
    "sample_every": 250,
    "checkpoint_every": 250,
    "sample_steps": 20,
    "seed": 0,
}

FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "flux": {**_COMMON, "rank": 16, "learning_rate": 1e-4, "steps": 1500, "resolution": 1024},
    "sd3": {**_COMMON, "rank": 16, "learning_rate": 1e-4, "steps": 1500, "resolution": 1024},
    "sdxl": {**_COMMON, "rank": 32, "learning_rate": 1e-4, "steps": 2000, "resolution": 1024, "sample_steps": 25},
    # diffusers' klein and Z-Image LoRA examples (1e-4 at 1024 px); both seeded models are few-step
    # distilled, so samples draw at their own step counts (klein 4, Z-Image Turbo 9).
    "flux2": {**_COMMON, "rank": 16, "learning_rate": 1e-4, "steps": 1500, "resolution": 1024, "sample_steps": 4},
    "zimage": {**_COMMON, "rank": 16, "learning_rate": 1e-4, "steps": 1500, "resolution": 1024, "sample_steps": 9},
    # ai-toolkit's Qwen-Image LoRA example (rank 16, 1e-4); diffusers' HiDream one (2e-4, 1000 steps).
    "qwenimage": {**_COMMON, "rank": 16, "learning_rate": 1e-4, "steps": 1500, "resolution": 1024},
    "hidream": {**_COMMON, "rank": 16, "learning_rate": 2e-4, "steps": 1000, "resolution": 1024},
}

PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "icon": {"rank": 16, "steps": 1500},
    "product-illustration": {"rank": 32, "steps": 2000},
    "logo-illustration": {"rank": 16, "steps": 1200},
    "premium-illustration": {"rank": 32, "steps": 2500},
}

# A small model that draws at a native size trains there, in bigger batches, faster. Why 1000 steps
# (300 learnt too little): scripts/outline_lora_report.py, figures in docs/benchmarks.md.
NATIVE_DEFAULTS = {"batch_size": 8, "learning_rate": 1e-3, "steps": 1000, "sample_every": 100, "checkpoint_every": 100}


def training_defaults(training_set: TrainingSet, model: ImageModel) -> dict[str, Any]:
    params = dict(FAMILY_DEFAULTS[model.family])
    params.update(PRESET_DEFAULTS.get(training_set.preset.slug, {}))
    if native := model.options.get("native_size"):
        params.update(NATIVE_DEFAULTS, resolution=int(native))
    return params


def training_side(training_set: TrainingSet) -> tuple[int, str]:
    """The side the set's images train at, and the model that trains there: the largest of the
    enabled models of its family (a model with a native size, like the demo's 64 px, trains at it)."""
    models = (
        ImageModel.objects.filter(family=training_set.family, enabled=True)
        if training_set.family in FAMILY_DEFAULTS
        else []
    )
    sides = [(int(training_defaults(training_set, model)["resolution"]), model.name) for model in models]
    return max(sides, default=(int(FAMILY_DEFAULTS.get(training_set.family, {}).get("resolution", 1024)), ""))
