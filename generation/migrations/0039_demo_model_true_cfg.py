"""The demo model runs with true CFG (generation.devtools.demo_model.TRUE_CFG): its entry gets the
option unless an admin has set one."""

from django.db import migrations

TRUE_CFG = 1.25


def add(apps, schema_editor):
    ImageModel = apps.get_model("generation", "ImageModel")
    for model in ImageModel.objects.filter(key="demo-brand"):
        if "true_cfg_scale" not in (model.options or {}):
            model.options = {**(model.options or {}), "true_cfg_scale": TRUE_CFG}
            model.save(update_fields=["options"])


def remove(apps, schema_editor):
    ImageModel = apps.get_model("generation", "ImageModel")
    for model in ImageModel.objects.filter(key="demo-brand"):
        if (model.options or {}).get("true_cfg_scale") == TRUE_CFG:
            model.options = {k: v for k, v in model.options.items() if k != "true_cfg_scale"}
            model.save(update_fields=["options"])


class Migration(migrations.Migration):
    dependencies = [("generation", "0038_depth_estimators")]
    operations = [migrations.RunPython(add, remove)]
