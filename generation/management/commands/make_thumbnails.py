from typing import Any

from django.core.management.base import BaseCommand
from PIL import Image

from generation.models import GeneratedImage
from generation.thumbnails import backfill

PROGRESS_EVERY = 25


class Command(BaseCommand):
    help = (
        "Make the grid thumbnails that images stored before thumbnails existed lack. "
        "Safe to run again: images that have one are left alone; unreadable files are skipped with a warning."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        missing = GeneratedImage.objects.filter(thumbnail="").order_by("created_at", "pk")
        total = missing.count()
        made = skipped = 0
        for done, row in enumerate(missing.iterator(chunk_size=200), start=1):
            try:
                made += backfill(row)
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                skipped += 1
                self.stderr.write(self.style.WARNING(f"Skipped image {row.pk} ({row.file.name}): {exc}"))
            if done % PROGRESS_EVERY == 0 or done == total:
                self.stdout.write(f"{done}/{total} images looked at")
        self.stdout.write(self.style.SUCCESS(f"Made {made} thumbnail(s); skipped {skipped} unreadable image(s)."))
