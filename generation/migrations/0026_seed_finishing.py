"""The demo brand's palette on the four asset types: Icons and Logo Illustrations are corrected to
it, cut out of their background and traced to SVG; the illustrations are scored against it and
sharpened a little, not corrected (the brief: illustrations keep their full range)."""

from django.db import migrations

PALETTE = ["#0f6cbd", "#107c10", "#f7630c", "#8764b8"]  # the demo brand (generation/training/demo_kit.py)
BACKGROUND = "#f6f7f9"

FLAT = {"correct_palette": True, "transparent_background": True, "trace_svg": True, "compliance_floor": 0.9}
ILLUSTRATION = {"correct_palette": False, "sharpen_radius": 1.0, "sharpen_amount": 40}
SETTINGS = {
    "icon": FLAT,
    "logo-illustration": FLAT,
    "product-illustration": ILLUSTRATION,
    "premium-illustration": ILLUSTRATION,
}


def seed(apps, schema_editor):
    AssetPreset = apps.get_model("generation", "AssetPreset")
    for slug, values in SETTINGS.items():
        for preset in AssetPreset.objects.filter(slug=slug):
            for name, value in {"palette": PALETTE, "background_colour": BACKGROUND, **values}.items():
                setattr(preset, name, value)
            preset.version += 1  # what it renders changed
            preset.save()


class Migration(migrations.Migration):
    dependencies = [("generation", "0025_finishing")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
