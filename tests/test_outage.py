"""A database that does not answer: requests get a 503 that says to try again, never a 500."""

import pytest
from django.db import OperationalError, connection
from django.test import Client

from generation.tokens import token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def outage(monkeypatch):
    """Every query from here on fails as a refused connection does."""

    def refused(*args, **kwargs):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    def start() -> None:
        monkeypatch.setattr(connection, "cursor", refused)

    return start


def test_a_page_asked_during_an_outage_says_to_try_again_with_a_503(alice, outage) -> None:
    browser = Client(raise_request_exception=False)
    browser.force_login(alice)
    outage()
    response = browser.get("/history/")
    assert response.status_code == 503 and response["Retry-After"] == "10"
    assert "Try again shortly" in response.content.decode()


def test_the_api_during_an_outage_answers_json_503_with_retry_after(alice, outage) -> None:
    api = Client(
        HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}", raise_request_exception=False
    )
    outage()
    response = api.get("/api/v1/models")
    assert response.status_code == 503 and response["Retry-After"] == "10"
    assert "try again shortly" in response.json()["message"]


def test_any_other_failure_is_still_a_500(alice, monkeypatch) -> None:
    from generation import views

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "render", broken)
    browser = Client(raise_request_exception=False)
    browser.force_login(alice)
    assert browser.get("/history/").status_code == 500
