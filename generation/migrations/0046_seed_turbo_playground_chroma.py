"""Registry entries for SDXL Turbo and Playground v2.5 (SDXL's architecture, each with its own
defaults) and Chroma1-HD (its own family), disabled until pulled."""

from django.db import migrations

MODELS = [
    {
        "key": "sdxl-turbo",
        "name": "SDXL Turbo",
        "family": "sdxl",
        "repo_id": "stabilityai/sdxl-turbo",
        "license_name": "Stability AI Community License",
        "commercial_use": False,
        "license_notice": (
            "Stability AI Community License: free for organisations with under $1M annual revenue; above "
            "that, outputs may be used in products only with a Stability AI Enterprise license."
        ),
        "license_url": "https://huggingface.co/stabilityai/sdxl-turbo/blob/main/LICENSE.md",
        # Distilled: 1-4 steps and no guidance, whatever the asset type asks; trained at 512 px.
        "default_steps": 4,
        "default_guidance": 0.0,
        "max_side": 1024,
        "options": {"native_size": 512},
        "supports_img2img": True,
        "position": 31,
    },
    {
        "key": "playground-v25",
        "name": "Playground v2.5",
        "family": "sdxl",
        "repo_id": "playgroundai/playground-v2.5-1024px-aesthetic",
        "license_name": "Playground v2.5 Community License",
        "commercial_use": False,
        "license_notice": (
            "Playground v2.5 Community License: read its terms on commercial use before putting outputs into "
            "products."
        ),
        "license_url": "https://huggingface.co/playgroundai/playground-v2.5-1024px-aesthetic/blob/main/LICENSE.md",
        # Its folder brings the EDM scheduler it was trained with; low guidance, as its authors run it.
        "default_guidance": 3.0,
        "max_side": 1536,
        "supports_img2img": True,
        "position": 32,
    },
    {
        "key": "chroma1-hd",
        "name": "Chroma1-HD",
        "family": "chroma",
        "repo_id": "lodestones/Chroma1-HD",
        "license_name": "Apache-2.0",
        "commercial_use": True,
        "license_notice": "Apache-2.0: outputs may be used in products.",
        "license_url": "https://huggingface.co/lodestones/Chroma1-HD",
        "default_guidance": 4.0,
        "supports_img2img": True,
        "position": 15,
    },
]


def seed(apps, schema_editor):
    ImageModel = apps.get_model("generation", "ImageModel")
    for entry in MODELS:
        ImageModel.objects.update_or_create(key=entry["key"], defaults={"enabled": False, **entry})


def unseed(apps, schema_editor):
    apps.get_model("generation", "ImageModel").objects.filter(key__in=[m["key"] for m in MODELS]).delete()


class Migration(migrations.Migration):
    dependencies = [("generation", "0045_job_memory_plan")]
    operations = [migrations.RunPython(seed, unseed)]
