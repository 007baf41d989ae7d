"""What a newcomer met: test fixtures offered to designers, LoRA files a checkout lacks, a small
model that silently draws something else, a token written on every API call."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from generation.jobs import submit
from generation.models import ApiToken, AssetPreset, BrandLora, ImageModel, PresetLora
from generation.tokens import token_create
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_is_default(settings):
    settings.STUDIO_DEFAULT_MODEL = "demo-brand"


def model_keys(client: Client) -> set[str]:
    page = client.get("/").content.decode()
    return {key for key in ImageModel.objects.values_list("key", flat=True) if f'value="{key}"' in page}


def test_designers_are_not_offered_the_random_weight_model(alice_client, demo_is_default) -> None:
    assert "tiny-flux" not in model_keys(alice_client)
    assert "demo-brand" in model_keys(alice_client)


def test_staff_still_see_the_random_weight_model(demo_is_default) -> None:
    UserFactory(username="admin", is_staff=True)
    client = Client()
    client.login(username="admin", password=PASSWORD)
    assert "tiny-flux" in model_keys(client)


def test_the_api_lists_no_test_models_to_designers(alice, demo_is_default) -> None:
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
    keys = {m["key"] for m in api.get("/api/v1/models").json()}
    assert "tiny-flux" not in keys and "demo-brand" in keys


def test_a_designer_cannot_submit_to_a_test_model_by_name(alice_client, demo_is_default, preset) -> None:
    response = alice_client.post("/", {"preset": preset.slug, "prompt": "a star", "model": "tiny-flux"})
    assert response.status_code == 422
    assert b"Pick one of the available models." in response.content


def test_the_picker_says_what_the_demo_model_draws_and_offers_each_subject_as_a_description(
    alice_client, demo_is_default
) -> None:
    demo = ImageModel.objects.get(key="demo-brand")
    page = alice_client.get("/").content.decode()
    assert f"draws only these {len(demo.subjects)} subjects" in page
    assert 'data-fill="a flat blue shield icon">shield</button>' in page


def test_a_description_the_demo_model_does_not_know_gets_a_note(alice, preset) -> None:
    demo = ImageModel.objects.get(key="demo-brand")
    job = submit.job_create(owner=alice, preset=preset, prompt="a padlock for security settings", model=demo)
    assert "Try one of: person, phone, key" in job.params["subject_note"]
    assert f"or the {len(demo.subjects) - 8} others listed under the model picker" in job.params["subject_note"]
    known = submit.job_create(owner=alice, preset=preset, prompt="a shield icon for security settings", model=demo)
    assert known.params["subject_note"] == ""
    from generation.control.inputs import store_upload
    from tests.control.test_controlnet import square_sketch, upload

    sketch = store_upload(alice, upload(square_sketch()))
    drawn = submit.job_create(owner=alice, preset=preset, prompt="a padlock", model=demo, sketch=sketch)
    assert drawn.params["subject_note"] == ""  # the sketch gives the shape


def test_a_model_without_a_subject_list_draws_anything(alice, preset) -> None:
    job = submit.job_create(owner=alice, preset=preset, prompt="a shield")
    assert job.params["subject_note"] == ""


def test_seeded_asset_types_name_no_lora_files() -> None:
    assert not AssetPreset.objects.filter(description__contains="safetensors").exists()


@pytest.fixture
def lost_lora(preset, settings, tmp_path):
    settings.STUDIO_LORA_ROOT = tmp_path / "loras"
    lora = BrandLora.objects.create(name="Lost icons", family="flux", file="flux/lost-v1.safetensors")
    PresetLora.objects.create(preset=preset, lora=lora, strength=0.8)
    return lora


def test_a_lora_whose_file_is_missing_is_left_out_of_jobs(alice, preset, lost_lora) -> None:
    job = submit.job_create(owner=alice, preset=preset, prompt="a star")
    assert job.params["loras"] == []


def test_staff_see_an_asset_types_missing_lora_flagged(preset, lost_lora) -> None:
    UserFactory(username="admin", is_staff=True)
    client = Client()
    client.login(username="admin", password=PASSWORD)
    page = client.get("/").content.decode()
    assert "whose file loras/flux/lost-v1.safetensors is missing" in page


def test_designers_are_not_shown_the_missing_lora(alice_client, lost_lora) -> None:
    assert b"lost-v1" not in alice_client.get("/").content


def test_a_token_records_its_last_use_at_most_once_a_minute(alice, django_assert_num_queries) -> None:
    secret = token_create(user=alice, name="plugin")[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    api.get("/api/v1/asset-types")
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    api.get("/api/v1/asset-types")
    assert ApiToken.objects.get().last_used_at == first
    ApiToken.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    api.get("/api/v1/asset-types")
    assert ApiToken.objects.get().last_used_at > first


@pytest.mark.parametrize("name", ["image", "image-file", "image-favorite", "image-vary", "job", "job-cancel"])
def test_id_url_gives_what_the_url_tag_gives(name) -> None:
    import uuid

    from django.urls import reverse

    from generation.templatetags.image_tiles import id_url

    pk = uuid.uuid4()
    assert id_url(name, pk) == reverse(name, args=[pk])
