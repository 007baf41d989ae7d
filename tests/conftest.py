import socket
from pathlib import Path

import pytest
from django.test import Client

from tests.factories import PASSWORD, AssetPresetFactory, UserFactory


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection beyond this machine fails at once: weights are never downloaded in tests."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in {"127.0.0.1", "localhost", "::1"} and not host.startswith("/"):
            raise OSError(f"Tests may not reach {host}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def tiny_flux_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from generation.devtools.tiny import build_tiny_flux

    return build_tiny_flux(tmp_path_factory.mktemp("models") / "tiny-flux")


@pytest.fixture(autouse=True)
def studio_settings(settings, tmp_path: Path, tiny_flux_dir: Path) -> None:
    # The seeded tiny-flux entry's relative folder "tiny-flux" resolves under STUDIO_MODELS_DIR.
    settings.STUDIO_MODELS_DIR = tiny_flux_dir.parent
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "generation.storage.AtomicFileSystemStorage",  # as settings.py: writes land whole
            "OPTIONS": {"location": tmp_path / "media"},
        },
    }


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    assert client.login(username="alice", password=PASSWORD)
    return client


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    assert client.login(username="bob", password=PASSWORD)
    return client


@pytest.fixture
def preset(db):
    return AssetPresetFactory(slug="test-icon", name="Test Icon")


@pytest.fixture
def card_admin_client(client, settings) -> Client:
    """A superuser's client, with workers on a T4 and an A10G: the cards the admin checks against."""
    settings.STUDIO_WORKER_CARDS = "t4,a10g"
    UserFactory(username="ada", is_staff=True, is_superuser=True)
    client.login(username="ada", password="correct horse battery staple")
    return client
