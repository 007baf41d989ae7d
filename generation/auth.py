"""Entra ID sign-in rules, as steps of social-auth's pipeline.

Accounts are keyed on the immutable object id (`oid`, settings: ID_KEY), never on a name or
an email that can be reassigned; social-core itself checks the signature, the audience, the
issuer and that the token's tenant is the configured one. These steps add the studio's rules:
an optional app role or group everyone must have, groups that make staff, and the group that
may use models whose license does not allow production use.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db.models import Q, QuerySet
from social_core.exceptions import AuthPolicyError

from .models import ImageModel

REFERENCE_GROUP = "reference-models"
# Who reviews submissions for the Brand Library (generation/review/), besides staff: Entra keeps it
# in step with ENTRA_REVIEWER_GROUP where that is set; staff may add people to it in the admin.
REVIEWER_GROUP = "reviewers"


def _claims(response: dict[str, Any]) -> tuple[set[str], set[str]]:
    return set(response.get("roles") or []), set(response.get("groups") or [])


def require_entra_access(backend: Any, response: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    """Before any account is made: the configured app role or group, if one is required."""
    roles, groups = _claims(response)
    if settings.ENTRA_REQUIRED_ROLE and settings.ENTRA_REQUIRED_ROLE not in roles:
        raise AuthPolicyError(backend, "Your account lacks the app role or group this studio requires.")
    if settings.ENTRA_REQUIRED_GROUP and settings.ENTRA_REQUIRED_GROUP not in groups:
        raise AuthPolicyError(backend, "Your account lacks the app role or group this studio requires.")


def apply_entra_groups(user: User | None, response: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    """At every sign-in: staff, the reference-models and the reviewers groups follow Entra (removals too)."""
    if user is None:
        return
    roles, groups = _claims(response)
    staff = bool(
        (settings.ENTRA_STAFF_ROLE and settings.ENTRA_STAFF_ROLE in roles)
        or (settings.ENTRA_STAFF_GROUP and settings.ENTRA_STAFF_GROUP in groups)
    )
    if user.is_staff != staff and not user.is_superuser:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])
    for entra_group, name in (
        (settings.ENTRA_REFERENCE_GROUP, REFERENCE_GROUP),
        (settings.ENTRA_REVIEWER_GROUP, REVIEWER_GROUP),
    ):
        if entra_group:
            group, _ = Group.objects.get_or_create(name=name)
            if entra_group in groups:
                user.groups.add(group)
            else:
                user.groups.remove(group)


def models_for(user: Any, queryset: QuerySet[ImageModel]) -> QuerySet[ImageModel]:
    """The models a user is offered: test fixtures (random weights) only for staff, unless one is
    the studio's default; models not licensed for production only for the reference group."""
    if not getattr(user, "is_staff", False):
        queryset = queryset.filter(Q(for_testing=False) | Q(key=settings.STUDIO_DEFAULT_MODEL))
    if not may_use_reference_models(user):
        queryset = queryset.filter(commercial_use=True)
    return queryset


def may_use_reference_models(user: Any) -> bool:
    """Models not licensed for production: everyone, unless a reference group is configured."""
    if not settings.ENTRA_REFERENCE_GROUP or user is None or getattr(user, "is_superuser", False):
        return True
    return bool(user.is_authenticated and user.groups.filter(name=REFERENCE_GROUP).exists())


def is_reviewer(user: Any) -> bool:
    """Who decides submissions for the Brand Library: staff, and the reviewers group."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_staff or user.groups.filter(name=REVIEWER_GROUP).exists())
