"""Entra ID without Microsoft: tokens signed here with a key the backend is told to trust,
checked by social-core's own validation, then the studio's rules in the pipeline."""

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import User
from social_core.backends.azuread_tenant import AzureADV2TenantOAuth2
from social_core.exceptions import AuthException, AuthPolicyError
from social_django.utils import load_strategy

from generation import auth
from generation.forms import GenerateForm
from generation.models import ImageModel

pytestmark = pytest.mark.django_db

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWK = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key())), "kid": "test-key", "alg": "RS256"}


@pytest.fixture
def backend(settings, monkeypatch):
    settings.SOCIAL_AUTH_AZUREAD_V2_TENANT_OAUTH2_KEY = CLIENT
    settings.SOCIAL_AUTH_AZUREAD_V2_TENANT_OAUTH2_TENANT_ID = TENANT
    settings.SOCIAL_AUTH_AZUREAD_V2_TENANT_OAUTH2_ID_KEY = "oid"
    backend = AzureADV2TenantOAuth2(load_strategy())
    monkeypatch.setattr(backend, "get_jwks_keys", lambda: [JWK])
    monkeypatch.setattr(
        backend, "openid_configuration", lambda: {"issuer": "https://login.microsoftonline.com/{tenantid}/v2.0"}
    )
    return backend


def token(**overrides) -> str:
    now = int(time.time())
    claims = {
        "aud": CLIENT,
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "tid": TENANT,
        "oid": "0b1d0000-0000-0000-0000-000000000001",
        "sub": "pairwise-subject",
        "preferred_username": "dana@example.com",
        "name": "Dana Designer",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "roles": ["Studio.User"],
        "groups": [],
    } | overrides
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "test-key"})


def test_a_good_token_is_accepted_and_the_account_is_keyed_on_the_object_id(backend) -> None:
    claims = backend.validate_and_return_id_token(token())
    assert backend.get_user_id({}, claims) == "0b1d0000-0000-0000-0000-000000000001"  # oid, not the username


@pytest.mark.parametrize(
    "overrides",
    [
        {
            "tid": "99999999-2222-3333-4444-555555555555",
            "iss": "https://login.microsoftonline.com/99999999-2222-3333-4444-555555555555/v2.0",
        },
        {"aud": "another-application"},
        {"exp": int(time.time()) - 60},
    ],
    ids=["wrong tenant", "wrong audience", "expired"],
)
def test_tokens_for_another_tenant_or_app_or_expired_are_refused(backend, overrides) -> None:
    with pytest.raises(AuthException):
        backend.validate_and_return_id_token(token(**overrides))


def test_a_token_signed_by_another_key_is_refused(backend) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        jwt.decode(token(), options={"verify_signature": False}), other, algorithm="RS256", headers={"kid": "test-key"}
    )
    with pytest.raises(AuthException):
        backend.validate_and_return_id_token(forged)


def test_a_missing_app_role_keeps_the_user_out(backend, settings) -> None:
    settings.ENTRA_REQUIRED_ROLE = "Studio.User"
    claims = backend.validate_and_return_id_token(token(roles=[]))
    with pytest.raises(AuthPolicyError):
        auth.require_entra_access(backend, response=claims)
    auth.require_entra_access(backend, response=backend.validate_and_return_id_token(token()))  # has the role


def test_groups_make_staff_and_open_the_reference_models(backend, settings) -> None:
    staff_group, reference_group = str(uuid.uuid4()), str(uuid.uuid4())
    settings.ENTRA_STAFF_GROUP, settings.ENTRA_REFERENCE_GROUP = staff_group, reference_group
    ImageModel.objects.filter(key="flux-dev").update(enabled=True)  # non-commercial license
    user = User.objects.create(username="dana")
    auth.apply_entra_groups(user, backend.validate_and_return_id_token(token(groups=[staff_group])))
    user.refresh_from_db()
    assert user.is_staff and not auth.may_use_reference_models(user)
    keys = set(GenerateForm(user=user).fields["model"].queryset.values_list("key", flat=True))
    assert "flux-dev" not in keys and "tiny-flux" in keys
    auth.apply_entra_groups(user, backend.validate_and_return_id_token(token(groups=[reference_group])))
    user.refresh_from_db()
    assert not user.is_staff and auth.may_use_reference_models(user)  # removed from staff, added to reference
    assert "flux-dev" in set(GenerateForm(user=user).fields["model"].queryset.values_list("key", flat=True))


def test_without_a_reference_group_everyone_sees_every_enabled_model(settings) -> None:
    settings.ENTRA_REFERENCE_GROUP = ""
    assert auth.may_use_reference_models(User(username="x"))
