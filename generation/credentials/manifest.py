"""The C2PA manifest of a studio image, built from what its job froze and signed with c2pa-python:
claim generator "Brand Studio", the IPTC digital source type, the model and its license, the LoRA
versions, the asset type's version (and, once brand kits exist, the kit's), what finishing did,
and for edits, repaints and finished renders the image they started from as an ingredient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

import c2pa
from django.db.models.fields.files import FieldFile

from ..models import BrandLora, GeneratedImage, GenerationJob
from ..stored import MissingFile, opened
from .keys import SigningKeys
from .xmp import IPTC_SOURCE_TYPES, spooled

CLAIM_GENERATOR = "Brand Studio"
ASSERTION = "com.brandstudio.generation"  # the studio's own record, beside the standard ones
CREATED, COMPOSITE = "trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"
SVG = "image/svg+xml"
# Where a job started from one of the studio's images: the params key that says so -> the words.
ORIGINS = {
    "edit": "Edited by an instruction to an image model",
    "inpaint": "A masked area repainted by an image model",
    "outpaint": "The canvas extended and the new area drawn by an image model",
}
# Each finishing stage (generation/finishing/pipeline.py) as the C2PA action closest to it.
STAGE_ACTIONS = {
    "refine": "c2pa.edited",
    "upscale": "c2pa.resized",
    "size": "c2pa.resized",
    "canvas": "c2pa.cropped",
    "palette": "c2pa.color_adjustments",
    "sharpen": "c2pa.filtered",
    "transparent": "c2pa.edited",
    "svg": "c2pa.converted",
}


def source_type(job: GenerationJob) -> str:
    """The IPTC digital source type: made by a model alone, or a model over a person's image
    (an edit, a repaint, a sketch)."""
    return COMPOSITE if any(key in job.params for key in ("edit", "inpaint", "sketch")) else CREATED


def kit_version(job: GenerationJob) -> str | None:
    """The brand kit the job followed, as "<slug> v<version>"; None for jobs from before kits
    (or of an asset type without one): never a made-up version."""
    kit = job.params.get("kit")
    return f"{kit['slug']} v{kit['version']}" if kit else None


def origin(job: GenerationJob) -> tuple[str, str] | None:
    """("edit" | "inpaint" | "outpaint", the source image's id) where the job repainted one of ours."""
    for key in ("edit", "inpaint"):
        if record := job.params.get(key):
            return ("outpaint" if record.get("outpaint") else key), str(record["of"])
    return None


@dataclass
class Ingredient:
    label: str  # what the actions name it by
    title: str
    relationship: str  # parentOf: the image an edit opened; componentOf: the render finishing changed
    file: FieldFile  # open

    def definition(self) -> dict[str, str]:
        return {"title": self.title, "relationship": self.relationship, "label": self.label}


def sign(source: IO[bytes], mime: str, image: GeneratedImage, keys: SigningKeys) -> IO[bytes]:
    """`source` (the file as it will be served) with the image's manifest embedded, rewound."""
    ingredients = _ingredients(image)
    try:
        builder = c2pa.Builder(definition(image, mime, {i.label for i in ingredients}), context=_context())
        for ingredient in ingredients:
            builder.add_ingredient(ingredient.definition(), "image/png", ingredient.file)
        out = spooled()
        builder.sign(keys.signer(), mime, source, out)
    finally:
        for ingredient in ingredients:
            ingredient.file.close()
    out.seek(0)
    return out


def _context() -> c2pa.Context:
    # No thumbnail in the manifest: making one decodes the whole image on every download, and
    # the file it travels in is the picture.
    return c2pa.Context(c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}}))


def definition(image: GeneratedImage, mime: str, ingredients: set[str]) -> dict[str, Any]:
    """The manifest's definition (the JSON c2pa's Builder takes); `ingredients`: the labels added."""
    extension = {"image/png": ".png", "image/webp": ".webp", SVG: ".svg"}[mime]
    return {
        "claim_generator_info": [{"name": CLAIM_GENERATOR}],
        "title": image.download_name.removesuffix(".png") + extension,
        "format": mime,
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": actions(image, mime, ingredients)}},
            {"label": ASSERTION, "data": generation(image)},
        ],
    }


def actions(image: GeneratedImage, mime: str, ingredients: set[str]) -> list[dict[str, Any]]:
    job = image.job
    agent = {"name": (job.params.get("model") or {}).get("name") or job.model_key}
    found = origin(job)
    if found is not None and "source" in ingredients:
        steps = [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": ["source"]}},
            {"action": "c2pa.edited", "digitalSourceType": IPTC_SOURCE_TYPES + COMPOSITE, "softwareAgent": agent}
            | {"description": ORIGINS[found[0]]},
        ]
    else:
        created = {"action": "c2pa.created", "digitalSourceType": IPTC_SOURCE_TYPES + source_type(job)}
        steps = [created | {"softwareAgent": agent}]
        if "sketch" in job.params:
            steps[0]["description"] = "Drawn by an image model from a designer's sketch"
    return steps + _finishing(image, mime, "render" in ingredients)


def _finishing(image: GeneratedImage, mime: str, from_render: bool) -> list[dict[str, Any]]:
    steps = []
    for record in image.finishing or []:
        stage = record.get("stage") if isinstance(record, dict) else None
        if stage not in STAGE_ACTIONS or (stage == "svg" and mime != SVG):
            continue  # tracing made the SVG only: the PNG and WebP were not converted
        parameters: dict[str, Any] = {"com.brandstudio.stage": stage}
        if from_render:
            parameters["ingredientIds"] = ["render"]
        agent = {"name": CLAIM_GENERATOR}
        steps.append({"action": STAGE_ACTIONS[stage], "softwareAgent": agent, "parameters": parameters})
    return steps


def generation(image: GeneratedImage) -> dict[str, Any]:
    """The studio's own assertion: which image, job, model and license, LoRA versions, asset type."""
    job, params = image.job, image.job.params
    model = params.get("model") or {}
    record: dict[str, Any] = {
        "image": str(image.pk),
        "job": str(job.pk),
        "seed": image.seed,
        "model": {"key": job.model_key} | {k: model.get(k) for k in ("name", "family", "license", "license_url")},
        "commercial_use": bool(model.get("commercial_use", True)),
        "loras": loras(params.get("loras") or []),
        "asset_type": {"slug": params.get("preset") or job.preset.slug, "version": params.get("preset_version")},
    }
    if (kit := kit_version(job)) is not None:
        record["kit_version"] = kit
    if (found := origin(job)) is not None:
        record["source"] = {"kind": found[0], "image": found[1]}
    if variation := params.get("variation"):
        record["variation_of"] = variation.get("of")
    return record


def loras(frozen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each LoRA the job applied: its file (which names the version), strength, and the version
    number the studio gave it where it trained it."""
    files = [str(lora.get("path")) for lora in frozen]
    versions = dict(BrandLora.objects.filter(file__in=files).values_list("file", "version"))
    return [
        {"name": lora.get("name"), "file": lora.get("path"), "version": versions.get(str(lora.get("path")))}
        | {"strength": lora.get("strength")}
        for lora in frozen
    ]


def _ingredients(image: GeneratedImage) -> list[Ingredient]:
    """The image an edit or repaint opened, and the render finishing changed (a refinish's source),
    each where its file is still in storage."""
    found: list[Ingredient] = []
    if (start := origin(image.job)) is not None:
        source = GeneratedImage.objects.select_related("job__preset").filter(pk=start[1]).first()
        if source is not None and (file := _open(source.file)) is not None:
            found.append(Ingredient("source", source.download_name, "parentOf", file))
    if image.rendered and image.rendered.name != image.file.name and (file := _open(image.rendered)) is not None:
        found.append(Ingredient("render", "render.png", "componentOf", file))
    return found


def _open(field: FieldFile) -> FieldFile | None:
    try:
        return opened(field, "An ingredient's file")
    except MissingFile:  # logged by `opened`; the manifest goes without that ingredient
        return None
