from typing import Any

from django.core.management.base import BaseCommand

from generation.engine import EngineError
from generation.model_files import folder_size, install_hint, local_weights
from generation.models import ImageModel


class Command(BaseCommand):
    help = "List the registry's models with their install status and size on this machine."

    def handle(self, *args: Any, **options: Any) -> None:
        rows = [("KEY", "FAMILY", "ENABLED", "INSTALLED", "SIZE", "LICENSE", "SOURCE")]
        for model in ImageModel.objects.all():
            try:
                path = local_weights(model)
                installed, size = "yes", f"{folder_size(path) / 2**30:.2f} GB"
            except EngineError:
                installed, size = f"no: {install_hint(model)}", "-"
            rows.append(
                (
                    model.key,
                    model.family,
                    "yes" if model.enabled else "no",
                    installed,
                    size,
                    model.license_name,
                    model.source,
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
