"""Reading the files the database names, for a response: what a user gets when one is gone from
storage (a moved media root, a lost blob) is a 404 that says so, never a 500 or a cut stream."""

from __future__ import annotations

import logging

from azure.core.exceptions import ResourceNotFoundError
from django.db.models.fields.files import FieldFile
from django.http import Http404

log = logging.getLogger(__name__)

# What storages raise for a missing file: the local one an OSError, Azure's ResourceNotFoundError
# (on the first read: it downloads then), an empty field a ValueError.
MISSING = (OSError, ResourceNotFoundError, ValueError)


class MissingFile(Http404):
    """A file the database names is not in storage; the message says which."""


def opened(field: FieldFile, what: str) -> FieldFile:
    """`field` open for reading, its first read already made (a blob store fetches the file then),
    or MissingFile naming `what` (\"This image's PNG\")."""
    try:
        field.open("rb")
        field.read(0)
    except MISSING as exc:
        field.close()
        log.warning("%s is missing from storage (%s): %s", what, field.name, exc)
        raise MissingFile(f"{what} is missing from storage; ask an admin to restore it.") from exc
    return field
