import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("generation", "0023_lora_fits")]

    operations = [
        migrations.CreateModel(
            name="ImagePreview",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("index", models.PositiveSmallIntegerField()),
                ("step", models.PositiveIntegerField()),
                ("webp", models.BinaryField()),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="previews",
                        to="generation.generationjob",
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("job", "index"), name="one_preview_per_image")],
            },
        ),
    ]
