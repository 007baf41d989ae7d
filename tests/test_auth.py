from urllib.parse import parse_qs, urlparse

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

ENTRA = {
    "AUTHENTICATION_BACKENDS": ["social_core.backends.azuread_tenant.AzureADV2TenantOAuth2"],
    "SOCIAL_AUTH_AZUREAD_V2_TENANT_OAUTH2_KEY": "client-id",
    "SOCIAL_AUTH_AZUREAD_V2_TENANT_OAUTH2_SECRET": "secret",
    "SOCIAL_AUTH_AZUREAD_V2_TENANT_OAUTH2_TENANT_ID": "00000000-0000-0000-0000-0000000000aa",
    "ENTRA_ENABLED": True,
    "LOCAL_LOGIN_ENABLED": False,
}


def test_a_designer_signs_in_with_a_username_and_password(client, alice) -> None:
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response.url == reverse("studio")


def test_a_wrong_password_is_refused_with_a_message(client, alice) -> None:
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200 and "Please enter a correct username and password" in response.content.decode()


@override_settings(**ENTRA)
def test_with_entra_configured_sign_in_goes_to_the_tenants_authorize_endpoint(client) -> None:
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with Microsoft" in page and 'name="password"' not in page
    response = client.post(reverse("social:begin", args=["azuread-v2-tenant-oauth2"]))
    location = urlparse(response.url)
    assert location.netloc == "login.microsoftonline.com"
    assert location.path == "/00000000-0000-0000-0000-0000000000aa/oauth2/v2.0/authorize"
    assert parse_qs(location.query)["client_id"] == ["client-id"]


@override_settings(**ENTRA)
def test_with_entra_only_a_password_cannot_sign_in(client, alice) -> None:
    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert client.get(reverse("studio")).status_code == 302
