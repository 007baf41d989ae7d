import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from generation.tokens import token_create


class Command(BaseCommand):
    help = "Create N designers with API tokens for scripts/loadtest.py and print the tokens as JSON."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--count", type=int, default=100)
        parser.add_argument("--prefix", default="load")

    def handle(self, *args: Any, count: int, prefix: str, **options: Any) -> None:
        users = get_user_model().objects
        tokens = [
            token_create(user=users.get_or_create(username=f"{prefix}{n:03d}")[0], name="load test")[1]
            for n in range(count)
        ]
        self.stdout.write(json.dumps(tokens))
