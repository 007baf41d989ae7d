"""The signing chain fixture: a development chain in the studio's settings."""

from pathlib import Path

import pytest

from generation.credentials.keys import DevelopmentChain, development_chain


@pytest.fixture
def signing(settings, tmp_path: Path) -> DevelopmentChain:
    """A development chain in the studio's settings, as `manage.py make_signing_chain` writes one."""
    chain = development_chain()
    (tmp_path / "chain.pem").write_bytes(chain.chain)
    (tmp_path / "key.pem").write_bytes(chain.key)
    settings.STUDIO_C2PA_CERT_FILE = str(tmp_path / "chain.pem")
    settings.STUDIO_C2PA_KEY_FILE = str(tmp_path / "key.pem")
    return chain
