"""The published models' entries get a speed profile: compiled on a GPU worker with the best
attention backend the card runs, and a step cache for Draft where the family runs one and the
model takes enough steps for it to matter (not the distilled ones). Entries that set a profile
keep theirs; the demo and test models, drawn on CPUs, get none."""

from django.db import migrations

BASE = {"compile": "gpu", "attention": "auto"}
DRAFT_CACHE = {
    "flux": {"method": "first_block", "value": 0.35},
    "qwenimage": {"method": "taylorseer", "value": 3},
    "qwenimageedit": {"method": "taylorseer", "value": 3},
}


def profile(model) -> dict:
    distilled = bool(model.default_steps) and model.default_guidance == 0
    cache = DRAFT_CACHE.get(model.family)
    return BASE | ({"cache": {"draft": cache}} if cache and not distilled else {})


def seed(apps, schema_editor):
    for model in apps.get_model("generation", "ImageModel").objects.exclude(repo_id=""):
        if "speed" not in (model.options or {}):
            model.options = {**(model.options or {}), "speed": profile(model)}
            model.save(update_fields=["options"])


def unseed(apps, schema_editor):
    for model in apps.get_model("generation", "ImageModel").objects.exclude(repo_id=""):
        if (model.options or {}).get("speed") == profile(model):
            model.options = {k: v for k, v in model.options.items() if k != "speed"}
            model.save(update_fields=["options"])


class Migration(migrations.Migration):
    dependencies = [("generation", "0049_worker_routing")]
    operations = [migrations.RunPython(seed, unseed)]
