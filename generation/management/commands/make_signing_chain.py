import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.credentials.keys import development_chain

FILES = {"chain": "signing-chain.pem", "key": "signing-key.pem", "root": "root-ca.pem"}


class Command(BaseCommand):
    help = (
        "Write a development certificate chain for content credentials (a root CA and a signing "
        "certificate it issued; c2pa refuses a self-signed one) and print the settings that use it. "
        "Trusted by nobody but this studio: production needs a certificate from a real CA."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dir", default=str(Path(settings.VAR_DIR) / "credentials"), help="where to write")
        parser.add_argument("--days", type=int, default=365, help="how long the signing certificate is valid")
        parser.add_argument("--force", action="store_true", help="replace a chain already there")

    def handle(self, *args: Any, **options: Any) -> None:
        folder = Path(options["dir"])
        paths = {part: folder / name for part, name in FILES.items()}
        if not options["force"] and any(path.exists() for path in paths.values()):
            raise CommandError(f"A chain is already in {folder}: use --force to replace it.")
        chain = development_chain(days=options["days"])
        folder.mkdir(parents=True, exist_ok=True)
        for part, path in paths.items():
            path.write_bytes(getattr(chain, part))
        os.chmod(paths["key"], 0o600)  # the private key: its owner only
        self.stdout.write(self.style.SUCCESS(f"Wrote a development signing chain to {folder}. Set:"))
        self.stdout.write(f"  STUDIO_C2PA_CERT_FILE={paths['chain']}")
        self.stdout.write(f"  STUDIO_C2PA_KEY_FILE={paths['key']}")
