"""Registry entries for the newer open models (disabled until pulled)."""

from django.db import migrations

APACHE = "Apache-2.0: outputs may be used in products."
MODELS = [
    {
        "key": "flux2-klein-4b",
        "name": "FLUX.2 [klein] 4B",
        "family": "flux2",
        "repo_id": "black-forest-labs/FLUX.2-klein-4B",
        "license_name": "Apache-2.0",
        "commercial_use": True,
        "license_notice": APACHE,
        "license_url": "https://huggingface.co/black-forest-labs/FLUX.2-klein-4B",
        "default_steps": 4,
        "default_guidance": 1.0,
        "supports_reference_image": True,
        "position": 50,
    },
    {
        "key": "flux2-klein-9b",
        "name": "FLUX.2 [klein] 9B",
        "family": "flux2",
        "repo_id": "black-forest-labs/FLUX.2-klein-9B",
        "license_name": "FLUX Non-Commercial License",
        "commercial_use": False,
        "license_notice": "FLUX Non-Commercial License: design reference only, not for products without a "
        "commercial license from Black Forest Labs.",
        "license_url": "https://huggingface.co/black-forest-labs/FLUX.2-klein-9B",
        "default_steps": 4,
        "default_guidance": 1.0,
        "supports_reference_image": True,
        "position": 51,
    },
    {
        "key": "z-image-turbo",
        "name": "Z-Image Turbo",
        "family": "zimage",
        "repo_id": "Tongyi-MAI/Z-Image-Turbo",
        "license_name": "Apache-2.0",
        "commercial_use": True,
        "license_notice": APACHE,
        "license_url": "https://huggingface.co/Tongyi-MAI/Z-Image-Turbo",
        "default_steps": 9,
        "default_guidance": 0.0,
        "supports_img2img": True,
        "position": 60,
    },
    {
        "key": "qwen-image",
        "name": "Qwen-Image",
        "family": "qwenimage",
        "repo_id": "Qwen/Qwen-Image",
        "license_name": "Apache-2.0",
        "commercial_use": True,
        "license_notice": APACHE,
        "license_url": "https://huggingface.co/Qwen/Qwen-Image",
        "default_steps": 50,
        "default_guidance": 4.0,
        "supports_negative_prompt": True,
        "supports_img2img": True,
        "supports_control_image": True,
        "position": 70,
    },
]


def seed(apps, schema_editor):
    ImageModel = apps.get_model("generation", "ImageModel")
    for entry in MODELS:
        ImageModel.objects.update_or_create(key=entry["key"], defaults={"enabled": False, **entry})


def unseed(apps, schema_editor):
    apps.get_model("generation", "ImageModel").objects.filter(key__in=[m["key"] for m in MODELS]).delete()


class Migration(migrations.Migration):
    dependencies = [("generation", "0006_seed_more_models")]
    operations = [migrations.RunPython(seed, unseed)]
