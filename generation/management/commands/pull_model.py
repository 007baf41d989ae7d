import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from generation.engine import EngineError
from generation.model_files import folder_size, pull
from generation.models import ImageModel


class Command(BaseCommand):
    help = "Download a model's weights into the Hugging Face cache (run on a machine with internet)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("key", help="The model's key, as `manage.py models` lists it")
        parser.add_argument("--token", default=os.environ.get("HF_TOKEN"), help="For gated repos (or set HF_TOKEN)")

    def handle(self, *args: Any, key: str, token: str | None, **options: Any) -> None:
        model = ImageModel.objects.filter(key=key).first()
        if model is None:
            raise CommandError(f"No model {key!r}; `manage.py models` lists them.")
        self.stdout.write(f"Downloading {model.source} (this can be tens of GB)...")
        try:
            path = pull(model, token=token)
        except EngineError as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:  # network, auth, gated repo: say what happened, exit non-zero
            raise CommandError(f"Could not download {model.source}: {exc.__class__.__name__}: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"{model.name}: {folder_size(path) / 2**30:.2f} GB in {path}"))
        if not model.enabled:
            self.stdout.write(f"Enable it in the admin (Models > {model.name}) to offer it in the studio.")
