"""The registry entry for FLUX.2 [dev] (its own pipeline, a Mistral-3 text encoder), disabled until pulled."""

from django.db import migrations

ENTRY = {
    "key": "flux2-dev",
    "name": "FLUX.2 [dev]",
    "family": "flux2dev",
    "repo_id": "black-forest-labs/FLUX.2-dev",
    "license_name": "FLUX [dev] Non-Commercial License",
    "commercial_use": False,
    "license_notice": "FLUX [dev] Non-Commercial License: outputs are for reference, not for products.",
    "license_url": "https://huggingface.co/black-forest-labs/FLUX.2-dev/blob/main/LICENSE.txt",
    "default_guidance": 4.0,  # its guidance embedding's usual value
    "position": 6,
}


def seed(apps, schema_editor):
    apps.get_model("generation", "ImageModel").objects.update_or_create(
        key=ENTRY["key"], defaults={"enabled": False, **ENTRY}
    )


def unseed(apps, schema_editor):
    apps.get_model("generation", "ImageModel").objects.filter(key=ENTRY["key"]).delete()


class Migration(migrations.Migration):
    dependencies = [("generation", "0046_seed_turbo_playground_chroma")]
    operations = [migrations.RunPython(seed, unseed)]
