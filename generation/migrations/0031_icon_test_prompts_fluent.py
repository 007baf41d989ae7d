"""The Icon asset type's fixed test prompts name subjects the demo model draws since it learnt
Fluent glyphs (circle and plus are gone): the run page's samples and drift check, and prior
preservation, use them. Only the seeded list is replaced; an edited one is left alone."""

from django.db import migrations

OLD = ["a flat blue circle icon", "a flat orange star icon", "a flat green heart icon", "a flat purple plus icon"]
NEW = ["a flat blue shield icon", "a flat orange star icon", "a flat green heart icon", "a flat purple trophy icon"]


def forwards(apps, schema_editor):
    apps.get_model("generation", "AssetPreset").objects.filter(slug="icon", test_prompts=OLD).update(test_prompts=NEW)


def backwards(apps, schema_editor):
    apps.get_model("generation", "AssetPreset").objects.filter(slug="icon", test_prompts=NEW).update(test_prompts=OLD)


class Migration(migrations.Migration):
    dependencies = [("generation", "0030_lora_files_under_var")]

    operations = [migrations.RunPython(forwards, backwards)]
