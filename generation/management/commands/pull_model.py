import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from generation.engine import EngineError
from generation.model_files import folder_size, pull, size_limits
from generation.models import ImageModel


class Command(BaseCommand):
    help = "Download a model's weights into the Hugging Face cache (run on a machine with internet)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("key", help="The model's key, as `manage.py list_models` lists it")
        parser.add_argument("--token", default=os.environ.get("HF_TOKEN"), help="For gated repos (or set HF_TOKEN)")

    def handle(self, *args: Any, key: str, token: str | None, **options: Any) -> None:
        model = ImageModel.objects.filter(key=key).first()
        if model is None:
            raise CommandError(f"No model {key!r}; `manage.py list_models` lists them.")
        self.stdout.write(f"Downloading {model.source} (this can be tens of GB)...")
        try:
            path = pull(model, token=token)
        except EngineError as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:  # network, auth, gated repo: say what happened, exit non-zero
            raise CommandError(f"Could not download {model.source}: {exc.__class__.__name__}: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"{model.name}: {folder_size(path) / 2**30:.2f} GB in {path}"))
        # A model registered before its download has no size limits yet: its config gives them now.
        model.size_limits = size_limits(path, model.family)
        model.save(update_fields=["size_limits"])
        self.stdout.write(f"Sizes it draws: {describe_limits(model.size_limits)}.")
        if not model.enabled:
            self.stdout.write(f"Enable it in the admin (Models > {model.name}) to offer it in the studio.")


def describe_limits(limits: dict[str, Any]) -> str:
    text = f"multiples of {limits.get('multiple', 16)} px"
    if limits.get("max_side"):
        text += f", at most {limits['max_side']} px a side ({limits['why']})"
    return text
