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
    call_command("list_models", stdout=out)
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


# --- the sizes a model can draw come from its own config


LIMITS = {  # what each tiny pipeline's config allows (generation/engine/tiny.py)
    "flux": {"multiple": 16},
    "flux2": {"multiple": 16},
    "hidream": {"multiple": 16},
    "qwenimage": {"multiple": 16},
    "sdxl": {"multiple": 8},
    "sd3": {"multiple": 16, "max_side": 1536, "why": "pos_embed_max_size 96 × patch 2 × VAE 8"},
    "zimage": {"multiple": 16, "max_side": 1024, "why": "axes_lens 64 × patch 2 × VAE 8"},
}


@pytest.fixture(scope="module", params=sorted(LIMITS))
def tiny(request, tmp_path_factory) -> tuple[str, object]:
    from generation.devtools.tiny import TINY_BUILDERS

    family = request.param
    return family, TINY_BUILDERS[family](tmp_path_factory.mktemp(family) / "pipeline")


def register(family: str, folder, **fields) -> ImageModel:
    model = ImageModel(
        key=f"mini-{family}", name=f"Mini {family}", family=family, local_path=str(folder), license_name="MIT"
    )
    model.commercial_use = True
    for name, value in fields.items():
        setattr(model, name, value)
    model.full_clean()
    model.save()
    return model


@pytest.fixture
def big_preset():
    from tests.factories import AssetPresetFactory

    return AssetPresetFactory(slug="poster", name="Poster", allowed_sizes=[[64, 64], [2048, 2048]])


def test_a_model_reads_the_sizes_it_can_draw_from_its_own_config(tiny) -> None:
    family, folder = tiny
    assert register(family, folder).size_limits == LIMITS[family]


def test_a_size_the_model_cannot_draw_is_a_form_error_in_the_studio(tiny, alice_client, big_preset) -> None:
    family, folder = tiny
    register(family, folder)
    form = {"preset": "poster", "prompt": "a gear", "model": f"mini-{family}", "variations": "1", "quality": "draft"}
    response = alice_client.post(reverse("studio"), form | {"size": "2048x2048"})
    largest = LIMITS[family].get("max_side")
    if largest:
        assert response.status_code == 422 and not GenerationJob.objects.exists()
        message = f"Mini {family} renders up to {largest}×{largest}; Poster at 2048x2048 is not a size it can draw."
        assert response.context["form"].errors["size"] == [message]
    else:
        assert GenerationJob.objects.count() == 1


def test_a_size_the_model_cannot_draw_is_a_422_in_the_api(tiny, alice, big_preset) -> None:
    from django.test import Client

    from generation.tokens import token_create

    family, folder = tiny
    register(family, folder)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}")
    body = {"asset_type": "poster", "description": "a gear", "model": f"mini-{family}", "size": "2048x2048"}
    response = api.post("/api/v1/jobs", body | {"variations": 1}, content_type="application/json")
    largest = LIMITS[family].get("max_side")
    if largest:
        assert response.status_code == 422 and response.json()["field"] == "size"
        assert f"renders up to {largest}×{largest}" in response.json()["message"]
        assert not GenerationJob.objects.exists()
    else:
        assert response.status_code == 202


@pytest.mark.parametrize("family", ["sd3", "zimage"])
def test_the_largest_side_read_from_the_config_is_what_the_pipeline_draws(family, tmp_path) -> None:
    """The limit is the pipeline's own: it draws at it, and one grid step more fails."""
    from generation.devtools.tiny import TINY_BUILDERS
    from generation.engine import EngineError, engine_class
    from generation.engine.types import GenerationRequest
    from generation.model_files import size_limits

    folder = TINY_BUILDERS[family](tmp_path / family)
    largest = size_limits(folder, family)["max_side"]
    engine = engine_class(family)(folder, device="cpu")

    def draw(side: int) -> None:
        request = GenerationRequest("a gear", "", side, 64, 1, 1.0, [1])
        engine.generate(request, max_batch=1, on_step=lambda s, t: None, on_images=lambda i, b: None)

    draw(largest)
    with pytest.raises((ValueError, IndexError, EngineError)):
        draw(largest + 16)


def test_a_model_registered_before_its_download_gets_its_limits_when_pulled(tiny, monkeypatch) -> None:
    family, folder = tiny
    model = ImageModel.objects.create(
        key="later", name="Later", family=family, repo_id="org/later", license_name="MIT", commercial_use=True
    )
    model.full_clean()  # not in this machine's Hugging Face cache: nothing known yet
    assert model.size_limits == {}
    # The download itself needs the internet; what it leaves is the tiny pipeline's folder.
    monkeypatch.setattr("generation.management.commands.pull_model.pull", lambda model, token: folder)
    out = StringIO()
    call_command("pull_model", "later", stdout=out)
    model.refresh_from_db()
    assert model.size_limits == LIMITS[family]
    assert "Sizes it draws: multiples of" in out.getvalue()


def test_an_admin_resave_reads_the_limits_once_the_repo_is_in_the_cache(admin_client, tmp_path, monkeypatch) -> None:
    import shutil

    from generation.devtools.tiny import build_tiny_sd3

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    form = new_model_form(name="Brand SD3", key="brand-sd3", family="sd3", repo_id="org/brand-sd3")
    assert admin_client.post(reverse("admin:generation_imagemodel_add"), form).status_code == 302
    model = ImageModel.objects.get(key="brand-sd3")
    assert model.size_limits == {}
    repo = tmp_path / "hub" / "models--org--brand-sd3"
    shutil.copytree(build_tiny_sd3(tmp_path / "sd3"), repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    change = reverse("admin:generation_imagemodel_change", args=[model.pk])
    assert admin_client.post(change, form).status_code == 302
    model.refresh_from_db()
    assert model.size_limits["max_side"] == 1536


def test_install_tiny_model_registers_a_random_weight_model_that_only_staff_are_offered(
    settings, tmp_path, alice_client, admin_client
) -> None:
    settings.STUDIO_MODELS_DIR = tmp_path / "models"
    out = StringIO()
    call_command("install_tiny_model", "flux2", stdout=out)
    model = ImageModel.objects.get(key="tiny-flux2")
    assert model.for_testing and model.enabled and model.family == "flux2"
    assert (tmp_path / "models" / "tiny-flux2" / "model_index.json").is_file() and model.size_limits
    assert "Registered tiny-flux2" in out.getvalue()
    assert 'value="tiny-flux2"' in admin_client.get(reverse("studio")).content.decode()
    assert 'value="tiny-flux2"' not in alice_client.get(reverse("studio")).content.decode()
    call_command("install_tiny_model", "flux2", stdout=out)  # again: kept, not rebuilt
    assert "Model already at" in out.getvalue() and "registered already" in out.getvalue()
    assert ImageModel.objects.filter(key="tiny-flux2").count() == 1
