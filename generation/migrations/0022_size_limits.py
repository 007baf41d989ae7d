from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0021_image_thumbnail"),
    ]

    operations = [
        migrations.AddField(
            model_name="imagemodel",
            name="size_limits",
            field=models.JSONField(
                blank=True,
                default=dict,
                editable=False,
                help_text="What its own config allows (sizes a multiple of, largest side), read when it is saved "
                "here with its weights on this machine, or when `pull_model` downloads it; checked when a job is "
                "submitted",
            ),
        ),
    ]
