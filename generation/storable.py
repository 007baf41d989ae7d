"""The one check for text the database must hold: every form, admin form and API schema runs it.

Postgres refuses NUL characters in text and JSON (even inside a lookup's WHERE clause, so a
bad value fails before validation could say so), and lone UTF-16 surrogates cannot be encoded
at all. Both reach us easily: JSON's "\\u0000" and "\\ud800" escapes, a pasted binary, a form
post made by a script.
"""

from __future__ import annotations

from typing import Any

MESSAGE = "That text holds characters that cannot be stored (a NUL character or a broken emoji)."


def storable(value: Any) -> bool:
    """True unless `value` (a string, or lists and dicts holding strings, keys included) holds
    a NUL character or a lone surrogate. Walked with a list, not recursion: JSON may nest deep."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or not _encodes(item):
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            pending.extend(item)
    return True


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def search_text(value: str) -> str:
    """Free text for a query, without what databases refuse (NUL, lone surrogates) and no search holds."""
    return value.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8")
