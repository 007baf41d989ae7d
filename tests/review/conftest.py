"""The cast: Alice designs and submits, Bob reviews (the reviewers group), Charlie designs and is
no reviewer, Sam is staff."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from generation.auth import REVIEWER_GROUP
from generation.models import GeneratedImage
from generation.tokens import token_create
from tests.factories import PASSWORD, GeneratedImageFactory, UserFactory


def api_client(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user, name='tests')[1]}")


def signed_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def bob(db):
    bob = UserFactory(username="bob", email="bob@example.com")
    bob.groups.add(Group.objects.get_or_create(name=REVIEWER_GROUP)[0])
    return bob


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", email="alice@example.com")


@pytest.fixture
def charlie(db):
    return UserFactory(username="charlie")


@pytest.fixture
def sam(db):
    return UserFactory(username="sam", is_staff=True)


@pytest.fixture
def charlie_client(charlie) -> Client:
    return signed_in(charlie)


@pytest.fixture
def sam_client(sam) -> Client:
    return signed_in(sam)


@pytest.fixture
def image(alice) -> GeneratedImage:
    return GeneratedImageFactory(job__owner=alice, job__prompt="a rocket over the city", traced=True)


def unlicensed(image: GeneratedImage) -> GeneratedImage:
    """The image as a model not licensed for production would have made it."""
    job = image.job
    job.params["model"] |= {"commercial_use": False, "license_notice": "Research only: not for products."}
    job.save(update_fields=["params"])
    return image
