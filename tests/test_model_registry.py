"""The model registry is data: admins add models without a code change."""

import json
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from generation.models import GenerationJob, ImageModel
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    UserFactory(username="ada", is_staff=True, is_superuser=True)
    client.login(username="ada", password="correct horse battery staple")
    return client


def new_model_form(**overrides) -> dict[str, object]:
    data = {
        "name": "Brand FLUX",
        "key": "brand-flux",
        "family": "flux",
        "enabled": "on",
        "position": "5",
        "local_path": "",
        "repo_id": "",
        "revision": "",
        "license_name": "Internal",
        "commercial_use": "on",
        "license_notice": "Trained on our own assets; fine for products.",
        "license_url": "",
        "max_side": "1024",
        "default_steps": "",
        "default_guidance": "",
    }
    return data | overrides


def test_an_admin_adds_a_local_model_and_designers_can_pick_it(admin_client, tiny_flux_dir, alice_client, preset):
    response = admin_client.post(
        reverse("admin:generation_imagemodel_add"), new_model_form(local_path=str(tiny_flux_dir))
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    page = alice_client.get(reverse("studio")).content.decode()
    assert 'value="brand-flux"' in page and "Trained on our own assets; fine for products." in page
    alice_client.post(
        reverse("studio"),
        {"preset": preset.slug, "prompt": "a gear", "model": "brand-flux", "variations": "1", "quality": "draft"},
    )
    assert GenerationJob.objects.get().model_key == "brand-flux"


def test_a_folder_of_another_pipeline_is_refused_for_the_family(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    model = ImageModel(
        **{
            k: v
            for k, v in new_model_form(local_path=str(tmp_path)).items()
            if k in {"name", "key", "family", "local_path", "license_name"}
        },
        commercial_use=True,
    )
    with pytest.raises(ValidationError, match="StableDiffusionXLPipeline, which the flux engine does not load"):
        model.full_clean()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"local_path": "/nowhere"}, "No readable diffusers model_index.json"),
        ({"local_path": "/nowhere", "repo_id": "org/model"}, "not both or neither"),
        ({}, "not both or neither"),
    ],
)
def test_a_model_entry_needs_exactly_one_readable_source(fields, message):
    model = ImageModel(key="x", name="X", family="flux", license_name="MIT", commercial_use=True, **fields)
    with pytest.raises(ValidationError, match=message):
        model.full_clean()


def test_the_picker_shows_enabled_models_with_their_license_notice(alice_client):
    ImageModel.objects.filter(key="flux-dev").update(enabled=True)
    page = alice_client.get(reverse("studio")).content.decode()
    assert 'value="flux-dev"' in page and "for design reference and exploration only" in page
    assert 'value="flux-schnell"' not in page  # disabled


@pytest.mark.parametrize("key", ["flux-schnell", "no-such-model"])
def test_a_disabled_or_unknown_model_is_a_form_error(alice_client, preset, key):
    response = alice_client.post(
        reverse("studio"),
        {"preset": preset.slug, "prompt": "a gear", "model": key, "variations": "1", "quality": "draft"},
    )
    assert response.status_code == 422 and "Pick one of the available models." in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_the_models_command_lists_install_status_and_size(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    out = StringIO()
    call_command("models", stdout=out)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines()}
    assert " yes " in lines["tiny-flux"] and " GB" in lines["tiny-flux"]
    assert "no: python manage.py pull_model flux-dev" in lines["flux-dev"]


def test_pulling_an_unknown_model_is_a_command_error():
    with pytest.raises(CommandError, match="No model 'flux-9'"):
        call_command("pull_model", "flux-9")


def test_img2img_can_only_be_ticked_for_a_family_that_has_it():
    model = ImageModel(
        key="hd",
        name="HiDream",
        family="hidream",
        repo_id="HiDream-ai/HiDream-I1-Dev",
        license_name="MIT",
        commercial_use=True,
        supports_img2img=True,
    )
    with pytest.raises(ValidationError, match="has no img2img pipeline"):
        model.full_clean()
