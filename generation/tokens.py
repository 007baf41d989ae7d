"""Personal API tokens: made once, shown once, stored hashed, revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from .models import ApiToken

PREFIX = "bst_"
LAST_USED_EVERY = timedelta(minutes=1)


def token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """The new token row and its secret (the only time the secret exists in clear)."""
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip()[:100] or "token", prefix=secret[:10], key_hash=_hash(secret)
    )
    return token, secret


def token_user(secret: str) -> User | None:
    """The active user a token belongs to, or None; notes when the token was last used."""
    if not secret.startswith(PREFIX):
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=_hash(secret), revoked_at__isnull=True).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    # At most one write a minute per token: every API call (a plugin polls each second) would
    # otherwise write a row, and "last used" is only read to the minute.
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def token_revoke(*, user: User, token_id: int) -> bool:
    return bool(
        ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    )


def _hash(secret: str) -> str:
    # Tokens are long and random: a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(secret.encode()).hexdigest()
