"""Registry entries for the instruction-edit models (disabled until pulled)."""

from django.db import migrations

MODELS = [
    {
        "key": "flux1-kontext-dev",
        "name": "FLUX.1 Kontext [dev]",
        "family": "fluxkontext",
        "repo_id": "black-forest-labs/FLUX.1-Kontext-dev",
        "license_name": "FLUX.1 [dev] Non-Commercial License",
        "commercial_use": False,
        "license_notice": "FLUX.1 [dev] Non-Commercial License: design reference only, not for products without a "
        "commercial license from Black Forest Labs.",
        "license_url": "https://huggingface.co/black-forest-labs/FLUX.1-Kontext-dev",
        "default_steps": 28,
        "default_guidance": 2.5,
        "position": 22,
    },
    {
        "key": "qwen-image-edit-2511",
        "name": "Qwen-Image-Edit-2511",
        "family": "qwenimageedit",
        "repo_id": "Qwen/Qwen-Image-Edit-2511",
        "license_name": "Apache-2.0",
        "commercial_use": True,
        "license_notice": "Apache-2.0: outputs may be used in products.",
        "license_url": "https://huggingface.co/Qwen/Qwen-Image-Edit-2511",
        "default_steps": 40,
        "default_guidance": 4.0,
        "supports_negative_prompt": True,
        "position": 81,
    },
]


def seed(apps, schema_editor):
    ImageModel = apps.get_model("generation", "ImageModel")
    for entry in MODELS:
        ImageModel.objects.update_or_create(key=entry["key"], defaults={"enabled": False, **entry})


def unseed(apps, schema_editor):
    apps.get_model("generation", "ImageModel").objects.filter(key__in=[m["key"] for m in MODELS]).delete()


class Migration(migrations.Migration):
    dependencies = [("generation", "0036_addon_family_choices")]
    operations = [migrations.RunPython(seed, unseed)]
