from typing import Any

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the Azure Blob container images are stored in (private: no anonymous access), if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        client = getattr(default_storage, "client", None)
        if client is None or not hasattr(client, "create_container"):
            raise CommandError(
                "The default storage is not Azure Blob (set AZURE_ACCOUNT_NAME or AZURE_CONNECTION_STRING)."
            )
        if client.exists():
            self.stdout.write(f"Container {client.container_name} already exists.")
            return
        client.create_container()  # no public_access argument: private
        self.stdout.write(self.style.SUCCESS(f"Created the private container {client.container_name}."))
