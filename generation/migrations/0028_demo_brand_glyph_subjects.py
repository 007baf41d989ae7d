"""The demo brand model v2 draws Fluent filled glyphs: its registry entry lists the subjects it was
taught (as its card, demo/brand-model/demo-kit.json, does; `build_default_model` keeps the two in line)."""

from django.db import migrations

SUBJECTS = [
    "person",
    "phone",
    "key",
    "headphones",
    "umbrella",
    "trophy",
    "wrench",
    "moon",
    "sun",
    "airplane",
    "music note",
    "shield",
    "heart",
    "star",
    "cloud",
    "lightbulb",
    "rocket",
    "calendar",
    "home",
    "mail",
    "lock",
    "camera",
    "bell",
    "gift",
    "flag",
    "bookmark",
    "chat",
    "cart",
    "folder",
    "document",
    "globe",
    "puzzle piece",
    "crown",
    "bug",
    "fire",
    "lightning",
    "pin",
    "location",
    "car",
    "glasses",
    "graduation cap",
    "apple",
    "beaker",
    "paint brush",
    "pen",
    "scissors",
    "ticket",
    "video",
]
OLD_SUBJECTS = ["circle", "square", "triangle", "star", "heart", "plus"]


def forwards(apps, schema_editor):
    ImageModel = apps.get_model("generation", "ImageModel")
    ImageModel.objects.filter(key="demo-brand", subjects=OLD_SUBJECTS).update(subjects=SUBJECTS)


def backwards(apps, schema_editor):
    ImageModel = apps.get_model("generation", "ImageModel")
    ImageModel.objects.filter(key="demo-brand", subjects=SUBJECTS).update(subjects=OLD_SUBJECTS)


class Migration(migrations.Migration):
    dependencies = [("generation", "0027_upscale_demo_upscaler")]
    operations = [migrations.RunPython(forwards, backwards)]
