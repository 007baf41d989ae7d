import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Build the offline CPU model (tiny FLUX) the embedded studio uses, if it is missing."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--force", action="store_true", help="Rebuild even if it exists.")

    def handle(self, *args: Any, force: bool = False, **options: Any) -> None:
        target = Path(settings.STUDIO_MODELS_DIR) / "tiny-flux"
        if (target / "model_index.json").is_file() and not force:
            self.stdout.write(f"Default model already at {target}")
            return
        from generation.engine.tiny import build_tiny_flux

        target.parent.mkdir(parents=True, exist_ok=True)
        # Build beside the target and move it in whole, so a half-built folder is never loaded.
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            built = build_tiny_flux(Path(scratch) / "model")
            if target.exists():
                shutil.rmtree(target)
            built.rename(target)
        self.stdout.write(self.style.SUCCESS(f"Built the default model at {target}"))
