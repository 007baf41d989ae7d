"""The demo brand model (trained by the studio's own trainer on the demo kit) becomes the
offline default, and each asset type gets the fixed test prompts new LoRA versions are judged on."""

from django.db import migrations

DEMO = {
    "key": "demo-brand",
    "name": "Demo brand (offline)",
    "family": "flux",
    "local_path": "demo-brand",
    "license_name": "Brand Studio demo weights",
    "commercial_use": True,
    "license_notice": "Trained by the studio on its demo kit (flat icons in four brand colours): it shows the "
    "workflow and the palette, not your brand.",
    "max_side": 2048,
    "supports_img2img": True,
    # It was trained at 64 px on 32-token T5 sequences (generation.devtools.demo_model.MODEL_OPTIONS).
    "options": {"native_size": 64, "max_sequence_length": 32},
    "enabled": True,
    "position": 0,
}

TEST_PROMPTS = {
    "icon": ["a flat blue circle icon", "a flat orange star icon", "a flat green heart icon", "a flat purple plus icon"],
    "product-illustration": ["a laptop on a desk", "a phone showing a chart", "a shopping bag", "a coffee mug"],
    "logo-illustration": ["a mountain peak", "a paper plane", "a leaf", "a lighthouse"],
    "premium-illustration": ["a team around a table", "a city skyline at dusk", "a rocket launch", "a garden"],
}


def seed(apps, schema_editor):
    ImageModel = apps.get_model("generation", "ImageModel")
    ImageModel.objects.filter(key="tiny-flux").update(name="Tiny FLUX (random weights)", position=90)
    ImageModel.objects.update_or_create(key=DEMO["key"], defaults=DEMO)
    AssetPreset = apps.get_model("generation", "AssetPreset")
    for slug, prompts in TEST_PROMPTS.items():
        AssetPreset.objects.filter(slug=slug, test_prompts=[]).update(test_prompts=prompts)


def unseed(apps, schema_editor):
    apps.get_model("generation", "ImageModel").objects.filter(key="demo-brand").delete()


class Migration(migrations.Migration):
    dependencies = [("generation", "0015_brand_training")]
    operations = [migrations.RunPython(seed, unseed)]
