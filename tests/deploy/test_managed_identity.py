"""Managed identity on Azure (brandstudio/azure/): the settings a production environment gives
(deploy/azure/main.bicep) build the storage backend, the database connection and the broker
connection from an azure-identity credential, and read Key Vault references. A fake credential
stands in for Entra ID; PostgreSQL and Redis are the real local servers, signed in to with its
tokens. Azurite stays the storage test that writes real blobs (tests/test_azure.py)."""

import itertools
import runpy
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from azure.core.credentials import AccessToken
from azure.storage.blob import UserDelegationKey
from django.db import connection, connections
from kombu import Connection
from kombu.exceptions import OperationalError
from storages.backends.azure_storage import AzureStorage

from brandstudio import azure
from brandstudio.azure.postgres.base import DatabaseWrapper
from brandstudio.celery import app

IDENTITY_OBJECT_ID = "0b7c4d1e-5f6a-4b8c-9d0e-1f2a3b4c5d6e"
# settings.py is run afresh for each environment (runpy), beside the copy Django loaded.
pytestmark = pytest.mark.filterwarnings("ignore:'brandstudio.settings' found in sys.modules")
BROKER = "redis://127.0.0.1:6379/12?credential_provider=brandstudio.azure.RedisCredentials"


class FakeCredential:
    """An azure-identity credential: it hands back the token it holds, and a new one once that one
    expired (`expire()`), as azure-identity's credentials do."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self._numbers = itertools.count(1)
        self._token = ""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.asked.extend(scopes)
        self._token = self._token or f"token-{next(self._numbers)}"
        return AccessToken(self._token, int(time.time()) + 3600)

    def expire(self) -> None:
        self._token = ""


class FakeVault:
    def __init__(self, vault_url: str, secrets: dict[str, str]) -> None:
        self.vault_url, self.secrets, self.asked = vault_url, secrets, []

    def get_secret(self, name: str, version: str | None = None) -> object:
        self.asked.append((name, version))
        return type("KeyVaultSecret", (), {"value": self.secrets[name]})()


@pytest.fixture
def credential(monkeypatch) -> FakeCredential:
    fake = FakeCredential()
    monkeypatch.setattr(azure, "credential", lambda: fake)
    return fake


def production_settings(monkeypatch, tmp_path: Path, **env: str) -> dict:
    """settings.py run afresh with the environment Container Apps gives the studio's processes."""
    base = {
        "SECRET_KEY": "s" * 50,
        "STUDIO_VAR_DIR": str(tmp_path),
        "CELERY_BROKER_URL": BROKER,
        "DATABASE_URL": "postgres://studio-identity@studio-pg.postgres.database.azure.com:5432/studio?sslmode=require",
        "DATABASE_ENTRA_AUTH": "1",
        "AZURE_ACCOUNT_NAME": "studioimg",
        "AZURE_CONTAINER": "brandstudio",
        "BEHIND_TLS_PROXY": "1",
        "ALLOWED_HOSTS": "studio.example.com",
    }
    for name in ("AZURE_ACCOUNT_KEY", "AZURE_CONNECTION_STRING", "ENTRA_CLIENT_ID", "ENTRA_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**base, **env}.items():
        monkeypatch.setenv(name, value)
    return runpy.run_module("brandstudio.settings", run_name="brandstudio.settings_under_test")


# --- Blob


def test_without_a_key_the_storage_backend_signs_in_with_the_managed_identity(monkeypatch, tmp_path, credential):
    options = production_settings(monkeypatch, tmp_path)["STORAGES"]["default"]["OPTIONS"]
    assert options["token_credential"] is credential
    assert options["account_key"] is None and options["connection_string"] is None

    storage = AzureStorage(**options)
    assert storage.service_client.credential is credential
    assert storage.service_client.url == "https://studioimg.blob.core.windows.net/"


def test_a_download_url_is_a_user_delegation_sas_without_an_account_key(monkeypatch, tmp_path, credential):
    storage = AzureStorage(**production_settings(monkeypatch, tmp_path)["STORAGES"]["default"]["OPTIONS"])
    asked = []

    def delegation_key(key_start_time: datetime, key_expiry_time: datetime) -> UserDelegationKey:
        asked.append(key_expiry_time)
        key = UserDelegationKey()
        key.signed_oid, key.signed_tid = IDENTITY_OBJECT_ID, str(uuid.uuid4())
        key.signed_start = key_start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_expiry = key_expiry_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_service, key.signed_version = "b", "2025-01-05"
        key.value = "a2V5LWZyb20tZW50cmEtaWQ="  # what Entra ID's delegation key would be
        return key

    monkeypatch.setattr(storage.service_client, "get_user_delegation_key", delegation_key)
    url = storage.url("outputs/icon.png")
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://studioimg.blob.core.windows.net/brandstudio/outputs/icon.png?")
    assert query["skoid"] == [IDENTITY_OBJECT_ID] and query["sp"] == ["r"] and query["sig"]
    assert len(asked) == 1 and asked[0] > datetime.now(UTC).replace(tzinfo=None) + timedelta(days=6)


def test_a_connection_string_keeps_key_auth_for_azurite_and_local_runs(monkeypatch, tmp_path, credential):
    azurite = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    options = production_settings(monkeypatch, tmp_path, AZURE_CONNECTION_STRING=azurite)["STORAGES"]["default"][
        "OPTIONS"
    ]
    assert "token_credential" not in options and options["connection_string"] == azurite
    assert credential.asked == []


# --- PostgreSQL


def with_defaults(database: dict) -> dict:
    """A DATABASES entry completed as Django completes its own (TIME_ZONE, CONN_MAX_AGE...)."""
    return connections.configure_settings({"default": dict(database)})["default"]


def test_entra_database_settings_connect_with_a_token_as_the_password(monkeypatch, tmp_path, credential):
    database = production_settings(monkeypatch, tmp_path)["DATABASES"]["default"]
    assert database["ENGINE"] == "brandstudio.azure.postgres"
    assert database["USER"] == "studio-identity" and not database["PASSWORD"]

    wrapper = DatabaseWrapper(with_defaults(database), "entra")
    first, second = wrapper.get_connection_params(), wrapper.get_connection_params()
    credential.expire()
    third = wrapper.get_connection_params()
    # Asked at every new connection: the same token while it lasts, a fresh one once it expired.
    assert [params["password"] for params in (first, second, third)] == ["token-1", "token-1", "token-2"]
    assert first["sslmode"] == "require" and first["user"] == "studio-identity"
    assert credential.asked == [azure.POSTGRES_SCOPE] * 3


@pytest.mark.django_db
def test_the_token_backend_opens_a_real_connection(credential):
    # The local server trusts 127.0.0.1, so any password passes: this proves the backend connects
    # and queries, with the token handed to psycopg as the password.
    settings_dict = {**connection.settings_dict, "ENGINE": "brandstudio.azure.postgres", "PASSWORD": ""}
    settings_dict["OPTIONS"] = {**settings_dict["OPTIONS"], "sslmode": "disable"}  # the local server has no TLS
    wrapper = DatabaseWrapper(with_defaults(settings_dict), "entra")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == settings_dict["USER"]
        assert wrapper.connection.info.password == "token-1"
    finally:
        wrapper.close()


def test_without_entra_the_database_keeps_its_usual_backend(monkeypatch, tmp_path, credential):
    database = production_settings(monkeypatch, tmp_path, DATABASE_ENTRA_AUTH="0")["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"


# --- Redis


@pytest.fixture
def redis_user(monkeypatch, credential):
    """A user of the local Redis whose password is the token the fake credential issues: the
    identity, as Azure Cache for Redis knows it from its access policy assignment."""
    user = f"studio-test-{uuid.uuid4().hex[:8]}"
    admin = redis.Redis(host="127.0.0.1", port=6379)
    admin.acl_setuser(user, enabled=True, passwords=["+token-1"], keys=["*"], channels=["*"], commands=["+@all"])
    monkeypatch.setenv("REDIS_ENTRA_OBJECT_ID", user)
    yield user
    admin.acl_deluser(user)
    admin.close()


def test_the_broker_url_names_the_entra_credential_provider(redis_user, credential):
    with app.connection_for_write(BROKER) as conn:
        provider = conn.default_channel.client.connection_pool.connection_kwargs["credential_provider"]
    assert isinstance(provider, azure.RedisCredentials)
    assert provider.get_credentials() == (redis_user, "token-1")
    assert credential.asked[-1] == azure.REDIS_SCOPE


def test_the_broker_signs_in_to_redis_with_a_token(redis_user, credential):
    """kombu connects as the identity's user with the token, sends a message and reads it back."""
    with Connection(BROKER) as conn:
        queue = conn.SimpleQueue(f"entra-{redis_user}")
        queue.put({"signed in as": redis_user})
        assert queue.get(timeout=5).payload == {"signed in as": redis_user}
        queue.clear()
        queue.close()
    assert credential.asked and set(credential.asked) == {azure.REDIS_SCOPE}


def test_a_token_the_cache_does_not_know_is_refused(redis_user, credential):
    credential.expire()
    credential.get_token(azure.REDIS_SCOPE)  # token-1 used up: the provider now hands token-2
    credential.expire()
    with pytest.raises(OperationalError, match="invalid username-password"), Connection(BROKER) as conn:
        conn.default_channel.client.ping()


def test_redis_credentials_need_the_identitys_object_id(monkeypatch, credential):
    monkeypatch.delenv("REDIS_ENTRA_OBJECT_ID", raising=False)
    with pytest.raises(RuntimeError, match="REDIS_ENTRA_OBJECT_ID"):
        azure.RedisCredentials().get_credentials()


# --- Key Vault references


def test_key_vault_references_in_the_environment_are_read_from_the_vault(monkeypatch, tmp_path, credential):
    vaults: dict[str, FakeVault] = {}
    secrets = {"django-secret-key": "k" * 50, "entra-client-secret": "from-the-vault"}
    monkeypatch.setattr(azure, "secret_client", lambda url: vaults.setdefault(url, FakeVault(url, secrets)))
    settings = production_settings(
        monkeypatch,
        tmp_path,
        SECRET_KEY="@Microsoft.KeyVault(SecretUri=https://studio-kv.vault.azure.net/secrets/django-secret-key/)",
        ENTRA_CLIENT_ID="client-id",
        ENTRA_TENANT_ID=str(uuid.uuid4()),
        ENTRA_CLIENT_SECRET="@Microsoft.KeyVault(VaultName=studio-kv;SecretName=entra-client-secret;SecretVersion=7)",
    )
    assert settings["SECRET_KEY"] == "k" * 50
    assert settings["SOCIAL_AUTH_AZUREAD_V2_TENANT_OAUTH2_SECRET"] == "from-the-vault"
    assert list(vaults) == ["https://studio-kv.vault.azure.net"]
    asked = vaults["https://studio-kv.vault.azure.net"].asked
    assert asked == [("django-secret-key", None), ("entra-client-secret", "7")]


def test_a_plain_value_is_no_reference():
    assert azure.resolve("just-a-secret") == "just-a-secret"
    assert not azure.is_reference("https://studio-kv.vault.azure.net/secrets/x")


def test_a_reference_without_a_secret_says_what_it_needs():
    with pytest.raises(ValueError, match="SecretUri"):
        azure.resolve("@Microsoft.KeyVault(VaultName=studio-kv)")


def test_the_vault_client_is_azure_keyvault_secrets_with_the_managed_identity(credential):
    azure.secret_client.cache_clear()
    try:
        client = azure.secret_client("https://studio-kv.vault.azure.net")
        assert type(client).__name__ == "SecretClient" and client.vault_url == "https://studio-kv.vault.azure.net"
    finally:
        azure.secret_client.cache_clear()


# --- The credential itself


def test_a_user_assigned_identity_is_named_by_azure_client_id(monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    azure.credential.cache_clear()
    try:
        assert type(azure.credential()).__name__ == "ManagedIdentityCredential"
        monkeypatch.delenv("AZURE_CLIENT_ID")
        azure.credential.cache_clear()
        assert type(azure.credential()).__name__ == "DefaultAzureCredential"  # az login on an operator's machine
    finally:
        azure.credential.cache_clear()
