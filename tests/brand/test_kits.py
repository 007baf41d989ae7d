"""Brand kits: one per asset type or shared, versioned, with word rules, the icon canvas and the Brand page."""

import json

import pytest
from django.urls import reverse
from PIL import Image

from generation.finishing.planner import plan_for
from generation.jobs import recipe
from generation.models import AssetPreset, BrandKit, GenerationJob, ImageModel, JobStatus
from generation.worker import run as worker_run
from tests.admin_forms import admin_change
from tests.factories import AssetPresetFactory, BrandKitFactory, GeneratedImageFactory

pytestmark = pytest.mark.django_db

DEMO = ["#0f6cbd", "#107c10", "#f7630c", "#8764b8"]


@pytest.fixture
def kit(preset) -> BrandKit:
    kit = BrandKitFactory(
        slug="acme",
        name="Acme",
        palette=["#0f6cbd", "#107c10"],
        background_colour="#ffffff",
        banned_words=["clipart", "stock photo"],
        required_terms=["flat vector"],
    )
    preset.kit = kit
    preset.save()
    return kit


# A kit's admin page posts its references inline's management form; this is for a kit with none.
NO_REFERENCES = {"brand_references-TOTAL_FORMS": "0", "brand_references-INITIAL_FORMS": "0"}


def submit(client, **overrides):
    data = {"preset": "test-icon", "prompt": "a clipboard", "quality": "standard", "variations": "1", "size": ""}
    return client.post(reverse("studio"), data | overrides)


def frozen(preset, prompt: str) -> dict:
    """A Standard job's parameters for `prompt` on tiny FLUX, as recipe freezes them."""
    model = ImageModel.objects.get(key="tiny-flux")
    return recipe.resolve_params(
        preset=preset, model=model, prompt=prompt, quality="standard", variations=1, width=64, height=64, seed=1
    )


# --- the kits the migration made


def test_the_seeded_asset_types_share_one_kit_made_from_their_palette() -> None:
    kits = {preset.kit for preset in AssetPreset.objects.all()}
    assert len(kits) == 1
    (kit,) = kits
    assert (kit.slug, kit.palette, kit.background_colour, kit.version) == ("brand", DEMO, "#f6f7f9", 1)
    assert "made from the asset types" in kit.history.get().history_change_reason


# --- versions


def test_changing_a_kit_makes_a_new_version_that_the_next_job_records(alice_client, card_admin_client, kit) -> None:
    submit(alice_client)
    assert GenerationJob.objects.get().params["kit"] == {"slug": "acme", "name": "Acme", "version": 1}
    response = admin_change(card_admin_client, kit, palette=json.dumps(["#0f6cbd"]), **NO_REFERENCES)
    assert response.status_code == 200
    kit.refresh_from_db()
    assert kit.version == 2
    submit(alice_client, prompt="a gear")
    job = GenerationJob.objects.latest("created_at")
    assert job.params["kit"]["version"] == 2
    image = GeneratedImageFactory(job=job)
    assert "Acme</a> v2" in alice_client.get(reverse("image", args=[image.pk])).content.decode()


def test_one_colour_change_reaches_every_asset_type_that_shares_the_kit(kit) -> None:
    logo = AssetPresetFactory(slug="test-logo", kit=kit)
    model = ImageModel.objects.get(key="tiny-flux")
    kit.palette = ["#000000"]
    kit.save()
    for preset in (AssetPreset.objects.get(slug="test-icon"), logo):
        assert plan_for(preset, model, "standard", 64, 64).palette.colours == ("#000000",)


def test_the_brand_page_lists_a_kits_versions_with_what_changed(alice_client, card_admin_client, kit) -> None:
    words = json.dumps(["clipart", "stock photo", "3d render"])
    admin_change(card_admin_client, kit, banned_words=words, **NO_REFERENCES)
    page = alice_client.get(reverse("brand")).content.decode()
    assert "Acme" in page and "version 2" in page
    assert "Banned words: clipart, stock photo → clipart, stock photo, 3d render" in page
    assert "#0f6cbd" in page and "flat vector" in page and "Test Icon" in page


def test_the_brand_page_shows_approved_library_items_of_the_kits_asset_types_as_examples(
    alice, alice_client, bob, kit, preset
) -> None:
    from generation.review import services
    from tests.factories import FinishedJobFactory

    bob.is_staff = True
    bob.save()
    job = FinishedJobFactory(owner=alice, preset=preset, prompt="a paper plane", images_total=1)
    image = GeneratedImageFactory(job=job)
    [item] = services.submission_create(user=alice, images=[image], note="", tags=[])
    services.submission_decide(reviewer=bob, submission=item, approve=True, comment="")
    page = alice_client.get(reverse("brand")).content.decode()
    assert "Approved examples" in page and reverse("library-item", args=[item.pk]) in page


def test_a_brand_reference_added_or_removed_makes_a_new_version(kit, preset) -> None:
    from tests.control.test_references import brand_reference

    reference = brand_reference(preset)
    kit.refresh_from_db()
    assert kit.version == 2 and "brand reference added" in kit.history.first().history_change_reason
    reference.delete()
    kit.refresh_from_db()
    assert kit.version == 3 and "removed" in kit.history.first().history_change_reason


def test_the_brand_page_asks_visitors_to_sign_in(client) -> None:
    assert client.get(reverse("brand")).status_code == 302


# --- words


def test_a_banned_word_is_a_form_error_naming_it_and_nothing_is_queued(alice_client, kit) -> None:
    response = submit(alice_client, prompt="a Clipart clipboard")
    assert response.status_code == 422
    assert "“clipart”" in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_a_banned_phrase_matches_whole_words_whatever_the_spacing(kit) -> None:
    assert kit.banned_in("a STOCK   photo of a cat") == ["stock photo"]
    assert kit.banned_in("clipartistic stockphoto") == []


def test_the_api_refuses_a_banned_word_with_a_json_4xx(alice, kit) -> None:
    from django.test import Client

    from generation.tokens import token_create

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}")
    response = client.post(
        "/api/v1/jobs",
        {"asset_type": "test-icon", "description": "some clipart", "variations": 1},
        content_type="application/json",
    )
    assert 400 <= response.status_code < 500
    assert "clipart" in json.dumps(response.json())
    assert not GenerationJob.objects.exists()


def test_every_other_way_in_is_refused_where_the_parameters_are_frozen(kit, preset) -> None:
    """Edits, repaints and extensions freeze their parameters through resolve_params: a banned word
    in their instruction or description is refused there, naming it."""
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="stock photo") as refused:
        frozen(preset, "a Stock Photo")
    assert refused.value.code == "banned_word"


def test_a_batch_names_the_description_with_the_banned_word(alice_client, kit) -> None:
    response = alice_client.post(
        reverse("batch"),
        {"preset": "test-icon", "descriptions": "a gear\nsome clipart", "quality": "standard", "variations": "1"},
    )
    assert "Description 2:" in response.content.decode() and not GenerationJob.objects.exists()


def test_required_terms_are_added_once_by_the_template(kit, preset) -> None:
    assert frozen(preset, "a gear")["prompt"] == "a gear, flat icon, flat vector"
    again = frozen(preset, "a Flat Vector gear")
    assert again["prompt"].lower().count("flat vector") == 1


def test_a_kit_cannot_ban_a_term_it_requires(kit) -> None:
    from django.core.exceptions import ValidationError

    kit.required_terms = ["clipart"]
    with pytest.raises(ValidationError, match="both banned and required"):
        kit.full_clean()


# --- the icon canvas


def test_the_canvas_centres_an_off_centre_subject_inside_the_safe_area() -> None:
    from generation.finishing import canvas

    image = Image.new("RGB", (100, 100), "#ffffff")
    image.paste((15, 108, 189), (0, 0, 30, 20))  # a blue bar in the top-left corner, touching the edges
    placed, info = canvas.centre(image, "#ffffff", 10.0, 0.1)
    assert info["subject"] == [0, 0, 30, 20]
    box = canvas.subject_box(placed, "#ffffff", 10.0)
    assert box is not None
    left, top, right, bottom = box
    assert (left, right) == (10, 90)  # scaled to the inner 80 px, 10 px free each side
    assert abs((top + bottom) / 2 - 50) <= 1


def test_a_blank_render_is_left_as_drawn() -> None:
    from generation.finishing import canvas

    image = Image.new("RGB", (32, 32), "#ffffff")
    assert canvas.centre(image, "#ffffff", 10.0, 0.2)[0] is image


def test_a_job_of_a_kit_with_a_safe_area_is_centred_by_finishing(alice_client, kit, preset) -> None:
    kit.safe_area = 0.2
    kit.save()
    submit(alice_client)
    job = GenerationJob.objects.get()
    assert job.params["finishing"]["safe_area"] == 0.2
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETE, job.error
    image = job.images.get()
    assert "canvas" in [record["stage"] for record in image.finishing]
