from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from generation.engine.families import FAMILIES
from generation.models import ImageModel

from .build_default_model import install_folder


class Command(BaseCommand):
    help = (
        "Build a tiny random-weight model of a family (the tests' architecture-true pipelines) and register "
        "it for staff only, so that the paths the demo model cannot take (style references and edits on "
        "FLUX.2 [klein] or Qwen-Image-Edit, SDXL, ...) can be tried offline. It draws noise: the pages, "
        "the API and the worker's loading are what it shows."
    )

    def add_arguments(self, parser: Any) -> None:
        from generation.devtools.tiny import TINY_BUILDERS  # torch and diffusers: only when it runs

        parser.add_argument("families", nargs="+", choices=sorted(TINY_BUILDERS), metavar="FAMILY")

    def handle(self, *args: Any, families: list[str], **options: Any) -> None:
        from generation.devtools.tiny import TINY_BUILDERS

        models_dir = Path(settings.STUDIO_MODELS_DIR)
        models_dir.mkdir(parents=True, exist_ok=True)
        for family in families:
            key = f"tiny-{family}"
            install_folder(models_dir / key, False, TINY_BUILDERS[family], self.stdout, self.style)
            if ImageModel.objects.filter(key=key).exists():  # an admin's edits to the entry are kept
                self.stdout.write(f"{key} is registered already")
                continue
            model = ImageModel(key=key, name=f"Tiny {FAMILIES[family]['label']} (random weights)", family=family)
            model.local_path, model.position = key, 95
            model.license_name, model.commercial_use = "Random weights (a test model)", True
            model.for_testing = True  # offered to staff only (auth.models_for)
            try:
                model.full_clean()
            except ValidationError as exc:  # a folder the registry's checks refuse: say why, not a traceback
                raise CommandError(f"{key}: {'; '.join(exc.messages)}") from exc
            model.save()
            self.stdout.write(self.style.SUCCESS(f"Registered {key} ({model.name}), for staff"))
