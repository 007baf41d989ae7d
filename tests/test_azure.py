"""Azure Blob storage for real, against Azurite (the Azure storage emulator, started here):
a private container made by the management command, save, read, signed download, expiry, delete."""

import os
import shutil
import subprocess
import time
from io import StringIO
from pathlib import Path

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.urls import reverse

from tests.processes import free_port, wait_for
from tests.test_workflow import finished_job

AZURITE = shutil.which("azurite-blob")
if not AZURITE and os.environ.get("STUDIO_REQUIRE_AZURITE"):
    raise RuntimeError("STUDIO_REQUIRE_AZURITE is set but azurite-blob is not installed")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not AZURITE, reason="no Azurite: npm install -g azurite (.ci/run does)"),
]

# Azurite's well-known development account (public in Microsoft's documentation).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    folder = tmp_path_factory.mktemp("azurite")
    command = [AZURITE, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(folder)]
    command += ["--skipApiVersionCheck", "--loose", "--silent"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
    wait_for(lambda: _answers(endpoint), timeout=30, what="Azurite")
    yield (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={endpoint};")
    process.kill()  # an emulator with a scratch folder: nothing to shut down cleanly
    process.wait(timeout=10)


def _answers(endpoint: str) -> bool:
    try:
        httpx.get(endpoint, timeout=1)
    except httpx.HTTPError:
        return False
    return True


@pytest.fixture
def blob_storage(settings, azurite: str, tmp_path: Path):
    container = f"studio{int(time.time() * 1000) % 10**9}"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.azure_storage.AzureStorage",
            "OPTIONS": {
                "connection_string": azurite,
                "account_name": ACCOUNT,
                "account_key": KEY,
                "azure_container": container,
                "expiration_secs": 300,
                "overwrite_files": False,
            },
        },
    }
    storages._storages.pop("default", None)  # the handler caches the backend it built
    settings.STUDIO_SIGNED_DOWNLOADS = True
    out = StringIO()
    call_command("create_container", stdout=out)
    assert "Created the private container" in out.getvalue()
    yield storages["default"]
    storages._storages.pop("default", None)


def test_save_read_sign_expire_and_delete_a_blob(blob_storage) -> None:
    name = blob_storage.save("generations/1/x/01-7.png", ContentFile(b"\x89PNG fake bytes"))
    with blob_storage.open(name) as fh:
        assert fh.read() == b"\x89PNG fake bytes"
    signed = blob_storage.url(name)
    assert "sig=" in signed and httpx.get(signed).content == b"\x89PNG fake bytes"
    unsigned = signed.split("?")[0]
    assert httpx.get(unsigned).status_code in (403, 404)  # the container is private
    short = blob_storage.url(name, expire=1)
    time.sleep(2.5)
    assert httpx.get(short).status_code == 403  # the signature has expired
    blob_storage.delete(name)
    assert not blob_storage.exists(name)


def test_the_container_command_is_idempotent(blob_storage) -> None:
    out = StringIO()
    call_command("create_container", stdout=out)
    assert "already exists" in out.getvalue()


@pytest.mark.django_db
def test_a_download_redirects_to_a_short_lived_signed_url(blob_storage, alice_client, alice) -> None:
    image = finished_job(alice).images.first()  # written through the Azure storage
    response = alice_client.get(reverse("image-file", args=[image.id]), {"download": "1"})
    assert response.status_code == 302 and "sig=" in response.url and "se=" in response.url
    blob = httpx.get(response.url)
    assert blob.status_code == 200 and blob.content[:4] == b"\x89PNG"
    assert image.download_name in blob.headers["content-disposition"]
    inline = alice_client.get(reverse("image-file", args=[image.id]))  # pages stream it through the studio
    assert inline.status_code == 200 and b"".join(inline.streaming_content)[:4] == b"\x89PNG"
