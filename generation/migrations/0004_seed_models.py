"""The model registry's first entries. Admins add and enable more in the admin.

Only the offline demo model is enabled: real weights must be pulled onto the workers first
(`manage.py pull_model KEY`), then the entry is enabled.
"""

from django.db import migrations

FLUX_DEV_NOTICE = (
    "FLUX.1 [dev] is under the FLUX.1 [dev] Non-Commercial License: outputs are for design reference "
    "and exploration only, not for products or production use without a commercial license from "
    "Black Forest Labs."
)

MODELS = [
    {
        "key": "tiny-flux",
        "name": "Tiny FLUX (offline demo)",
        "family": "flux",
        "local_path": "tiny-flux",
        "license_name": "Brand Studio demo weights",
        "commercial_use": True,
        "license_notice": "Random-weight demo model built offline: it shows the workflow, not brand artwork.",
        "max_side": 1024,
        "enabled": True,
        "position": 0,
    },
    {
        "key": "flux-schnell",
        "name": "FLUX.1 [schnell]",
        "family": "flux",
        "repo_id": "black-forest-labs/FLUX.1-schnell",
        "license_name": "Apache-2.0",
        "commercial_use": True,
        "license_url": "https://huggingface.co/black-forest-labs/FLUX.1-schnell",
        "license_notice": "Apache-2.0: outputs may be used in products.",
        "default_steps": 4,
        "default_guidance": 0.0,
        "max_side": 2048,
        "enabled": False,
        "position": 10,
    },
    {
        "key": "flux-dev",
        "name": "FLUX.1 [dev]",
        "family": "flux",
        "repo_id": "black-forest-labs/FLUX.1-dev",
        "license_name": "FLUX.1 [dev] Non-Commercial License",
        "commercial_use": False,
        "license_url": "https://huggingface.co/black-forest-labs/FLUX.1-dev/blob/main/LICENSE.md",
        "license_notice": FLUX_DEV_NOTICE,
        "max_side": 2048,
        "enabled": False,
        "position": 11,
    },
]


def seed(apps, schema_editor):
    ImageModel = apps.get_model("generation", "ImageModel")
    for entry in MODELS:
        ImageModel.objects.update_or_create(key=entry["key"], defaults=entry)


def unseed(apps, schema_editor):
    apps.get_model("generation", "ImageModel").objects.filter(key__in=[m["key"] for m in MODELS]).delete()


class Migration(migrations.Migration):
    dependencies = [("generation", "0003_image_model")]
    operations = [migrations.RunPython(seed, unseed)]
