"""A large training set's page: duplicates were found at upload, so the page compares nothing, and
it shows its images a page at a time (1,008 images took 12.7 s and 37 MB of HTML)."""

import pytest
from django.test import Client

from generation.models import AssetPreset, TrainingImage, TrainingSet
from generation.training import data as training_data
from tests.factories import PASSWORD, UserFactory
from tests.training.test_training import icon, png, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(db) -> Client:
    UserFactory(username="sam", is_staff=True, is_superuser=True)
    client = Client()
    assert client.login(username="sam", password=PASSWORD)
    return client


@pytest.fixture
def training_set(db) -> TrainingSet:
    return TrainingSet.objects.create(name="Icons", preset=AssetPreset.objects.get(slug="icon"), family="flux")


def test_duplicates_are_found_once_at_upload_and_the_page_compares_nothing(staff_client, training_set, monkeypatch):
    base = icon(0, 128)
    files = [upload("a.png", png(base)), upload("a-copy.jpg", png(base, "JPEG")), upload("b.png", png(icon(5, 128)))]
    training_data.add_uploads(training_set, files)
    copy = training_set.images.get(original_name="a-copy.jpg")
    assert copy.similar == [[training_set.images.get(original_name="a.png").pk, "near-duplicates"]]
    monkeypatch.setattr(training_data, "_why_similar", lambda a, b: pytest.fail("compared on view"))
    page = staff_client.get(training_set.get_absolute_url()).content.decode()
    assert "a.png and a-copy.jpg: near-duplicates." in page


def test_the_set_page_shows_its_images_a_page_at_a_time(staff_client, training_set) -> None:
    TrainingImage.objects.bulk_create(
        TrainingImage(
            training_set=training_set,
            file=f"training/sets/x/{n}.png",
            original_name=f"{n}.png",
            width=64,
            height=64,
            hashes={"full": "0" * 16, "crops": []},
        )
        for n in range(130)
    )
    first = staff_client.get(training_set.get_absolute_url()).content.decode()
    assert first.count("<figure") == 120 and "Images 1–120 of 130" in first and "?page=2" in first
    second = staff_client.get(training_set.get_absolute_url(), {"page": "2"}).content.decode()
    assert second.count("<figure") == 10 and "130 images included" in second
