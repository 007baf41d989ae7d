"""An API body past the limit is refused by its Content-Length, before any of it is read or stored."""

import pytest
from django.http import multipartparser
from django.test import Client

from generation.tokens import token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(alice) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}")


def test_an_upload_declaring_more_than_the_limit_is_refused_before_it_is_read(api, monkeypatch) -> None:
    parsed: list[object] = []
    monkeypatch.setattr(multipartparser.MultiPartParser, "parse", lambda self: parsed.append(self))
    body = (
        b"--x\r\nContent-Disposition: form-data; name=file; filename=big.png\r\n\r\n" + b"0" * 1024 + b"\r\n--x--\r\n"
    )
    response = api.post(
        "/api/v1/inputs", body, content_type="multipart/form-data; boundary=x", CONTENT_LENGTH=str(200 * 2**20)
    )
    assert response.status_code == 413 and "21 MB" in response.json()["message"]
    assert parsed == []


def test_a_body_within_the_limit_goes_on_to_the_api(api) -> None:
    response = api.post("/api/v1/inputs", b"", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH="0")
    assert response.status_code == 422  # no file: the API itself answers
