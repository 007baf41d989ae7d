import re

from django.db import migrations, models

import generation.models

DEMO_SUBJECTS = ["circle", "square", "triangle", "star", "heart", "plus"]


def forwards(apps, schema_editor):
    ImageModel = apps.get_model("generation", "ImageModel")
    ImageModel.objects.filter(key="tiny-flux").update(for_testing=True)
    ImageModel.objects.filter(key="demo-brand").update(subjects=DEMO_SUBJECTS)
    # The seeded descriptions named LoRA files no checkout has; designers read these.
    AssetPreset = apps.get_model("generation", "AssetPreset")
    for preset in AssetPreset.objects.filter(description__contains="LoRA: "):
        preset.description = re.sub(r"\s*LoRA: \S+", "", preset.description).strip()
        preset.save(update_fields=["description"])


class Migration(migrations.Migration):
    dependencies = [("generation", "0019_fair_dispatch")]

    operations = [
        migrations.AddField(
            model_name="imagemodel",
            name="for_testing",
            field=models.BooleanField(
                default=False,
                help_text="Random weights or a test fixture: only staff see it in the forms and the API",
            ),
        ),
        migrations.AddField(
            model_name="imagemodel",
            name="subjects",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text='What a small model knows how to draw, e.g. ["circle", "star"]: shown next to it in the '
                "picker; a description naming none of them gets a note under its result. Empty: it draws anything.",
                validators=[generation.models.validate_subjects],
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
