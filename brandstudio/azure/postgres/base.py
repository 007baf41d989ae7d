"""Django's PostgreSQL backend that signs in with Microsoft Entra ID: no password is stored
anywhere, the managed identity's token is the password.

Azure Database for PostgreSQL checks the token when a connection opens, so each new connection
asks for one; azure-identity hands back the one it holds until a few minutes before it expires,
then a fresh one. A connection already open outlives its token (CONN_MAX_AGE keeps it a minute).
https://learn.microsoft.com/azure/postgresql/flexible-server/how-to-connect-with-managed-identity
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base

from .. import POSTGRES_SCOPE, token


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        params["password"] = token(POSTGRES_SCOPE)
        params.setdefault("sslmode", "require")  # Azure refuses plain connections; say so on the client too
        return params
