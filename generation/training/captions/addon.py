"""The captioner add-on: a transformers image-text-to-text folder (Florence-2, BLIP, Qwen2.5-VL,
Qwen3-VL...) registered in the admin like a depth estimator, and checked from its files alone when
it is saved (the web process never imports torch or transformers; the worker's load is the last
word, and says why on the set page when it fails)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from django.db.models import QuerySet

from ...json_files import read_config
from ...lora_files import read_header
from ...models import AddOn, AddOnKind

# The heads transformers' AutoModelForImageTextToText loads end so (VisionEncoderDecoderModel aside).
GENERATING = ("ForConditionalGeneration", "ForCausalLM", "ForVisionText2Text")
EXAMPLES = "Florence-2, BLIP, Qwen2.5-VL"


def captioners() -> QuerySet[AddOn]:
    """The captioners a designer may choose on a training set's page."""
    return AddOn.objects.filter(kind=AddOnKind.CAPTIONER, enabled=True).order_by("name")


def captioner_problems(addon: AddOn) -> list[str]:
    """What is wrong with a captioner's folder (empty: it can be saved)."""
    if addon.family:
        return ["A captioner serves every family: leave the family blank."]
    folder, name = addon.resolved_local_path, addon.local_path
    try:
        config = read_config(folder / "config.json")
    except (OSError, ValueError):
        return [f"No readable config.json in {name!r}: a captioner is a transformers image-text-to-text folder."]
    if config.get("auto_map"):
        return [
            f"The model in {name!r} needs its own Python code (trust_remote_code), which the studio never runs: "
            "use a transformers-native copy (for Florence-2, florence-community/Florence-2-large)."
        ]
    if problem := _architecture_problem(config):
        return [problem]
    return [problem for problem in (_processor_problem(folder, name), _weights_problem(folder, name)) if problem]


def _architecture_problem(config: dict) -> str:
    architectures = config.get("architectures")
    names = [str(a) for a in architectures] if isinstance(architectures, list) else []
    held = ", ".join(names) or "no architecture"
    if "VisionEncoderDecoderModel" in names:
        return ""
    if not any(n.endswith(GENERATING) for n in names):
        return f"That folder holds {held}, not a model that writes text about an image ({EXAMPLES} are)."
    if not isinstance(config.get("vision_config"), dict):
        return f"That folder holds {held}, a text model: a captioner must see images (its config has no vision_config)."
    return ""


def _processor_problem(folder: Path, name: str) -> str:
    has_image_processor = (folder / "preprocessor_config.json").is_file()
    if not has_image_processor and (folder / "processor_config.json").is_file():
        with contextlib.suppress(OSError, ValueError):  # transformers 5 writes it inside the processor's file
            has_image_processor = "image_processor" in read_config(folder / "processor_config.json")
    if not has_image_processor:
        return f"No image processor in {name!r} (preprocessor_config.json): the captioner needs it to read images."
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "spiece.model", "tokenizer.model")
    if not any((folder / file).is_file() for file in tokenizer_files):
        return f"No tokenizer in {name!r} (tokenizer.json or tokenizer_config.json): the captioner needs it to write."
    return ""


def _weights_problem(folder: Path, name: str) -> str:
    """The weights are .safetensors files, all there and whole (a header and a size check each:
    a 16 GB model is never read into the web process)."""
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickled = " (only .bin files, which the studio does not load: take the .safetensors ones)"
        return f"No .safetensors weights in {name!r}" + (pickled if any(folder.glob("*.bin")) else ".")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(read_config(index).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            return f"model.safetensors.index.json in {name!r} is not readable."
        if missing := sorted(str(s) for s in shards if not (folder / str(s)).is_file()):
            return f"{missing[0]} is missing from {name!r} (model.safetensors.index.json lists it): copy it there."
    for file in weights:
        try:
            read_header(file)
        except ValueError as exc:
            return f"{file.name}: {exc}"
    return ""
