"""Brand LoRA files move from the checkout's loras/ to STUDIO_LORA_ROOT (now under STUDIO_VAR_DIR,
with the database and media): a trained LoRA is data, not source. Files already at the new place
are left alone; the move is undone by nothing (the old folder simply stays empty)."""

import shutil
from pathlib import Path

from django.conf import settings
from django.db import migrations


def move_files(apps, schema_editor):
    old_root = Path(settings.BASE_DIR) / "loras"
    new_root = Path(settings.STUDIO_LORA_ROOT)
    if not old_root.is_dir() or old_root.resolve() == new_root.resolve():
        return
    for lora in apps.get_model("generation", "BrandLora").objects.all():
        for name in (lora.file, str(Path(lora.file).with_suffix(".json"))):
            old, new = old_root / name, new_root / name
            if old.is_file() and not new.exists():
                new.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(old), str(new))


class Migration(migrations.Migration):
    dependencies = [("generation", "0029_job_and_run_notes")]

    operations = [migrations.RunPython(move_files, migrations.RunPython.noop)]
