"""Registers the demo upscaler shipped in upscalers/ (scripts/train_demo_upscaler.py): a 4x Real-ESRGAN
Compact trained here on the demo brand's procedural icons, so the offline demo model's 64 px renders
reach 1024 px Icons through a model instead of Lanczos. Its scale and architecture are what the
file holds (the admin reads them on save; a migration cannot run that check)."""

from django.db import migrations

DEMO = {
    "name": "Demo icons 4x (offline)",
    "file": "demo-icons-4x.safetensors",
    "scale": 4,
    "architecture": "RealESRGAN Compact",
    "supports_half": True,
    "license_name": "Brand Studio (trained on procedural icons)",
    "commercial_use": True,
    "license_notice": "Trained by the studio on icons drawn by code (generation/training/demo_kit.py); "
    "made for the demo brand's flat icons.",
}


def register(apps, schema_editor):
    Upscaler = apps.get_model("generation", "Upscaler")
    Upscaler.objects.update_or_create(key="demo-icons-4x", defaults=DEMO)


def unregister(apps, schema_editor):
    apps.get_model("generation", "Upscaler").objects.filter(key="demo-icons-4x").delete()


class Migration(migrations.Migration):
    dependencies = [("generation", "0026_seed_finishing")]
    operations = [migrations.RunPython(register, unregister)]
