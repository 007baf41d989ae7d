from django.db import migrations


def enable(apps, schema_editor):
    # The tiny demo is a FLUX.1 pipeline, so it has FLUX's img2img twin for "More like this".
    apps.get_model("generation", "ImageModel").objects.filter(family="flux").update(supports_img2img=True)


class Migration(migrations.Migration):
    dependencies = [("generation", "0013_groups_and_variations")]
    operations = [migrations.RunPython(enable, migrations.RunPython.noop)]
