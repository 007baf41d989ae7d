"""The Brand Library: approved images, searched by asset type, tag, words, colour and date
without reading a file; staff retire items, which stay in the lineage, marked; downloads carry
content credentials like every other."""

from datetime import timedelta

import factory
import pytest
from django.urls import reverse
from django.utils import timezone

from generation.models import Submission
from generation.review import colours, services
from generation.review.selectors import BadSearch, LibrarySearch, library_search
from tests.factories import AssetPresetFactory, GeneratedImageFactory, png_bytes

pytestmark = pytest.mark.django_db


def approved(owner, reviewer, *, colour="blue", prompt="a rocket", preset=None, tags=(), days_ago=0, mode="RGB"):
    """An image of `owner` approved by `reviewer` `days_ago` days ago."""
    job = {"job__owner": owner, "job__prompt": prompt} | ({"job__preset": preset} if preset else {})
    image = GeneratedImageFactory(**job, file=factory.django.FileField(data=png_bytes(colour, mode=mode)))
    [submission] = services.submission_create(user=owner, images=[image], note="", tags=list(tags))
    item = services.submission_decide(reviewer=reviewer, submission=submission, approve=True, comment="")
    Submission.objects.filter(pk=item.pk).update(decided_at=timezone.now() - timedelta(days=days_ago))
    return item


def found(user, **search) -> list[str]:
    return [item.image.job.prompt for item in library_search(user, LibrarySearch(**search))]


def test_approval_records_the_images_dominant_colours(alice, bob) -> None:
    item = approved(alice, bob, colour="#0f6cbd")
    [colour] = item.colours.all()
    assert (colour.hex, colour.share) == ("#0f6cbd", 1.0)
    assert colour.lab_l == pytest.approx(colours.to_lab("#0f6cbd")[0])


def test_transparent_pixels_are_no_colour_of_the_image() -> None:
    from PIL import Image

    picture = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    picture.paste((0, 128, 0, 255), (0, 0, 5, 10))
    assert [s.hex for s in colours._swatches(picture)] == ["#008000"]


def test_the_library_is_searched_by_asset_type_tag_words_colour_and_date(alice, bob, charlie) -> None:
    icon, logo = AssetPresetFactory(slug="icon", name="Icon"), AssetPresetFactory(slug="logo", name="Logo")
    approved(alice, bob, colour="#0f6cbd", prompt="a blue shield", preset=icon, tags=["Security"], days_ago=10)
    approved(alice, bob, colour="#d13438", prompt="a red rocket", preset=logo, tags=["launch", "security"], days_ago=2)
    approved(alice, bob, colour="#107c10", prompt="a green leaf", preset=icon, tags=["nature"])
    assert found(charlie) == ["a green leaf", "a red rocket", "a blue shield"]  # newest approval first
    assert found(charlie, asset_type="icon") == ["a green leaf", "a blue shield"]
    assert found(charlie, tag="SECURITY") == ["a red rocket", "a blue shield"]
    assert found(charlie, q="ROCKET") == ["a red rocket"]
    assert found(charlie, colour="blue") == ["a blue shield"]
    assert found(charlie, colour="#d43a3a") == ["a red rocket"]  # a near shade
    assert found(charlie, colour="0f6cbd") == found(charlie, colour="#0F6CBD") == ["a blue shield"]
    today = timezone.localdate()
    assert found(charlie, since=today - timedelta(days=3)) == ["a green leaf", "a red rocket"]
    assert found(charlie, until=today - timedelta(days=3)) == ["a blue shield"]
    assert found(charlie, asset_type="icon", tag="security", colour="blue", q="shield") == ["a blue shield"]


def test_a_colour_search_orders_the_nearest_first(alice, bob, charlie) -> None:
    approved(alice, bob, colour="#4080e0", prompt="far blue")  # ΔE 12 from the brand blue
    approved(alice, bob, colour="#0f6cbd", prompt="brand blue")
    assert found(charlie, colour="#0f6cbd") == ["brand blue", "far blue"]


def test_a_search_that_cannot_be_read_says_which_filter(charlie) -> None:
    with pytest.raises(BadSearch) as bad:
        library_search(charlie, LibrarySearch(colour="sky-ish"))
    assert bad.value.field == "colour" and "#0f6cbd" in str(bad.value)
    today = timezone.localdate()
    with pytest.raises(BadSearch) as backwards:
        library_search(charlie, LibrarySearch(since=today, until=today - timedelta(days=1)))
    assert backwards.value.field == "since"


def test_the_library_page_filters_and_says_what_it_cannot_read(alice, bob, charlie_client) -> None:
    item = approved(alice, bob, colour="#0f6cbd", prompt="a blue shield", tags=["security"])
    page = charlie_client.get(reverse("library"), {"colour": "blue", "tag": "security"})
    assert page.status_code == 200 and reverse("library-item", args=[item.pk]) in page.content.decode()
    assert "data:image/svg+xml" in page.content.decode()  # its colour, drawn without inline styles
    bad = charlie_client.get(reverse("library"), {"colour": "nope"})
    assert bad.status_code == 422 and "is not a colour" in bad.content.decode()
    assert charlie_client.get(reverse("library"), {"since": "yesterday"}).status_code == 422


def test_the_library_item_shows_its_lineage_and_downloads_with_content_credentials(alice, bob, charlie_client) -> None:
    item = approved(alice, bob)
    page = charlie_client.get(reverse("library-item", args=[item.pk])).content.decode()
    assert "Description, as typed" in page and "Approved by bob" in page
    response = charlie_client.get(reverse("library-file", args=[item.pk]), {"download": "1"})
    png = b"".join(response.streaming_content)
    assert response.status_code == 200 and b"DigitalSourceType" in png  # the XMP every download carries
    assert "attachment" in response["Content-Disposition"]
    webp = charlie_client.get(reverse("library-file", args=[item.pk]), {"format": "webp"})
    assert webp.status_code == 200 and webp["Content-Type"] == "image/webp"
    assert charlie_client.get(reverse("library-file", args=[item.pk]), {"format": "svg"}).status_code == 404
    assert charlie_client.get(reverse("library-thumbnail", args=[item.pk])).status_code == 200


def test_staff_retire_an_item_it_leaves_the_library_and_stays_marked_in_its_lineage(
    alice, bob, sam, sam_client, charlie, charlie_client, alice_client
) -> None:
    item = approved(alice, bob, prompt="an old logo")
    response = sam_client.post(reverse("library-retire", args=[item.pk]))
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.retired_by == sam and item.retired_at is not None
    assert found(charlie) == [] and charlie_client.get(reverse("library-item", args=[item.pk])).status_code == 404
    assert found(sam) == ["an old logo"]
    staff_page = sam_client.get(reverse("library")).content.decode()
    assert "Retired" in staff_page
    assert "Retired from the Brand Library" in alice_client.get(item.image.get_absolute_url()).content.decode()
    again = sam_client.post(reverse("library-retire", args=[item.pk]))
    assert again.status_code == 409 and "retired already" in again.content.decode()


def test_designers_cannot_retire(alice, bob, charlie_client) -> None:
    item = approved(alice, bob)
    response = charlie_client.post(reverse("library-retire", args=[item.pk]))
    assert response.status_code == 302 and response.url.startswith("/admin/login/")
    assert Submission.objects.get(pk=item.pk).retired_at is None


def test_a_retired_image_may_be_approved_again_as_a_new_item(alice, bob, sam) -> None:
    item = approved(alice, bob)
    services.library_retire(user=sam, item=item)
    [again] = services.submission_create(user=alice, images=[item.image], note="Back", tags=[])
    services.submission_decide(reviewer=bob, submission=again, approve=True, comment="")
    assert found(alice) == ["a rocket"]
