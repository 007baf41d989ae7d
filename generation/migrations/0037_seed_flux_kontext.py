"""A registry entry for FLUX.1 Kontext [dev] (instruction edits; disabled until pulled)."""

from django.db import migrations

KONTEXT = {
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
}


def seed(apps, schema_editor):
    ImageModel = apps.get_model("generation", "ImageModel")
    ImageModel.objects.update_or_create(key=KONTEXT["key"], defaults={"enabled": False, **KONTEXT})


def unseed(apps, schema_editor):
    apps.get_model("generation", "ImageModel").objects.filter(key=KONTEXT["key"]).delete()


class Migration(migrations.Migration):
    dependencies = [("generation", "0036_addon_family_choices")]
    operations = [migrations.RunPython(seed, unseed)]
