"""Azure by managed identity: one credential for Blob, PostgreSQL, Redis and Key Vault.

On Azure Container Apps every process of the studio runs as the user-assigned identity that
deploy/azure/main.bicep gives it (AZURE_CLIENT_ID names it); elsewhere DefaultAzureCredential finds
an operator's `az login`. Nothing here asks Azure for anything unless a setting says to: account
keys and connection strings still work for Azurite and local runs.

- Blob: settings.py hands `credential()` to django-storages when no key or connection string is
  set; signed download URLs are then user delegation SAS, signed by a key Entra ID issues.
- PostgreSQL: ENGINE `brandstudio.azure.postgres` connects with a token as the password.
- Redis: a broker URL with `credential_provider=brandstudio.azure.RedisCredentials` authenticates
  each new connection with a token (kombu builds the provider from the URL).
- Key Vault: `resolve()` turns a `@Microsoft.KeyVault(...)` reference in the environment into the
  secret (Container Apps resolves its own references before the process starts; this is for the
  same settings run anywhere else).
"""

from __future__ import annotations

import functools
import os
import re
from typing import TYPE_CHECKING, Protocol

from redis.credentials import CredentialProvider

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

# The audiences Entra ID issues tokens for: Azure Database for PostgreSQL, Azure Cache for Redis.
POSTGRES_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"
REDIS_SCOPE = "https://redis.azure.com/.default"

# App Service's syntax, which Container Apps users already write:
#   @Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>[/<version>])
#   @Microsoft.KeyVault(VaultName=<vault>;SecretName=<name>[;SecretVersion=<version>])
_REFERENCE = re.compile(r"@Microsoft\.KeyVault\((?P<args>[^)]*)\)", re.IGNORECASE)
_SECRET_URI = re.compile(r"(?P<vault>https://[^/]+)/secrets/(?P<name>[^/]+)(?:/(?P<version>[^/]*))?/?")


class SecretGetter(Protocol):
    """What `resolve` needs of azure-keyvault-secrets' SecretClient."""

    def get_secret(self, name: str, version: str | None = None) -> object: ...


@functools.cache
def credential() -> TokenCredential:
    """This process's one credential. azure-identity keeps each token it fetched and asks for a new
    one a few minutes before it expires, so callers ask it again at every new connection."""
    # azure-identity (and msal under it) load only where a setting asks for Azure: a laptop never pays for it.
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if client_id := os.environ.get("AZURE_CLIENT_ID"):
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def token(scope: str) -> str:
    return credential().get_token(scope).token


class RedisCredentials(CredentialProvider):
    """Microsoft Entra ID for Azure Cache for Redis: the identity's object id is the user name and a
    fresh token the password, asked for at each new connection (redis-py calls this then). The
    cache drops a connection whose token expired; kombu connects again, with a new token."""

    def __init__(self, username: str | None = None) -> None:
        self.username = username or os.environ.get("REDIS_ENTRA_OBJECT_ID", "")

    def get_credentials(self) -> tuple[str, str]:
        if not self.username:
            raise RuntimeError("Set REDIS_ENTRA_OBJECT_ID to the managed identity's object (principal) id.")
        return self.username, token(REDIS_SCOPE)


def is_reference(value: str) -> bool:
    return bool(_REFERENCE.fullmatch(value.strip()))


def resolve(value: str) -> str:
    """The secret a Key Vault reference names, or `value` itself when it is no reference."""
    match = _REFERENCE.fullmatch(value.strip())
    if not match:
        return value
    vault_url, name, version = parse_reference(match["args"])
    secret = secret_client(vault_url).get_secret(name, version)
    return str(getattr(secret, "value", "") or "")


def parse_reference(args: str) -> tuple[str, str, str | None]:
    """(vault URL, secret name, version or None) from what stands inside @Microsoft.KeyVault(...)."""
    fields = dict(part.split("=", 1) for part in args.split(";") if "=" in part)
    fields = {key.strip().lower(): item.strip() for key, item in fields.items()}
    if uri := fields.get("secreturi"):
        match = _SECRET_URI.fullmatch(uri)
        if not match:
            raise ValueError(f"Not a Key Vault secret URI: {uri!r}")
        return match["vault"], match["name"], match["version"] or None
    if "vaultname" in fields and "secretname" in fields:
        vault_url = f"https://{fields['vaultname']}.vault.azure.net"
        return vault_url, fields["secretname"], fields.get("secretversion") or None
    raise ValueError(f"A Key Vault reference needs SecretUri=, or VaultName= and SecretName=: {args!r}")


@functools.cache
def secret_client(vault_url: str) -> SecretGetter:
    # azure-keyvault-secrets loads only when a setting holds a Key Vault reference.
    from azure.keyvault.secrets import SecretClient

    return SecretClient(vault_url=vault_url, credential=credential())
