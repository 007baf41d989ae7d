"""Every JSON field the admin edits parses and validates one way: what Python's json module or the
database would choke on is a form error naming the problem, never a server error; a safetensors
header or config.json that is not what it claims is "not a weights file", never a 500."""

import json
from pathlib import Path

import pytest
from django.test import Client

from generation.models import AddOn, AddOnKind, AssetPreset, BrandKit, ImageModel
from tests.admin_forms import admin_change
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

HOSTILE = {
    "nested 50,000 deep": "[" * 50_000 + "]" * 50_000,
    "a 5,000-digit integer": "[" + "9" * 5000 + "]",
    "NaN": "[NaN]",
    "1e999": "[1e999]",
    "a lone surrogate": '["\\ud800"]',
    "nested 30 deep": "[" * 30 + "]" * 30,
}


@pytest.fixture
def staff_client(db) -> Client:
    UserFactory(username="sam", is_staff=True, is_superuser=True)
    client = Client(raise_request_exception=False)
    assert client.login(username="sam", password=PASSWORD)
    return client


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize(
    ("model", "key", "field"),
    [
        (BrandKit, {"slug": "brand"}, "palette"),
        (BrandKit, {"slug": "brand"}, "banned_words"),
        (BrandKit, {"slug": "brand"}, "required_terms"),
        (AssetPreset, {"slug": "icon"}, "allowed_sizes"),
        (AssetPreset, {"slug": "icon"}, "test_prompts"),
        (ImageModel, {"key": "tiny-flux"}, "options"),
        (ImageModel, {"key": "tiny-flux"}, "subjects"),
    ],
)
def test_a_hostile_json_value_is_a_form_error_on_every_json_field(staff_client, model, key, field, text) -> None:
    row = model.objects.get(**key)
    before = getattr(row, field)
    response = admin_change(staff_client, row, **{field: text})
    assert response.status_code == 200, response.content[:300]
    assert response.context["adminform"].form.errors.get(field), field
    row.refresh_from_db()
    assert getattr(row, field) == before


def test_test_prompts_must_be_descriptions(staff_client) -> None:
    icon = AssetPreset.objects.get(slug="icon")
    response = admin_change(staff_client, icon, test_prompts="[1]")
    assert "a list of descriptions" in " ".join(response.context["adminform"].form.errors["test_prompts"])


@pytest.mark.parametrize(
    "header",
    [
        b"[1]",
        b"null",
        b'{"w": {"dtype": "F32", "shape": [1]}}',
        b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": "0,4"}}',
    ],
    ids=["a list", "null", "no data_offsets", "offsets as a string"],
)
def test_a_controlnet_whose_weights_header_is_malformed_is_not_a_weights_file(tmp_path, settings, header) -> None:
    settings.STUDIO_MODELS_DIR = tmp_path
    folder = tmp_path / "odd-controlnet"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"_class_name": "FluxControlNetModel"}))
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 4)
    addon = AddOn(key="odd", name="Odd", kind=AddOnKind.CONTROLNET, family="flux", control_type="canny")
    addon.local_path = "odd-controlnet"
    with pytest.raises(Exception) as refused:
        addon.full_clean()
    assert "diffusion_pytorch_model.safetensors" in str(refused.value)
    assert refused.type.__name__ == "ValidationError"


@pytest.mark.parametrize("config", ["[1]", "[" * 50_000 + "]" * 50_000, "null"], ids=["a list", "deep", "null"])
def test_a_controlnet_whose_config_is_not_an_object_says_so(tmp_path, settings, config) -> None:
    settings.STUDIO_MODELS_DIR = tmp_path
    folder = tmp_path / "odd-controlnet"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config)
    addon = AddOn(key="odd", name="Odd", kind=AddOnKind.CONTROLNET, family="flux", control_type="canny")
    addon.local_path = "odd-controlnet"
    with pytest.raises(Exception) as refused:
        addon.full_clean()
    assert refused.type.__name__ == "ValidationError" and "config.json" in str(refused.value)


def test_an_add_ons_weights_are_checked_by_their_header_never_read_whole(tmp_path, settings, monkeypatch) -> None:
    """A 2 GB ControlNet saved in the admin took the web process from 0.7 to 2.4 GB: it was read whole."""
    from generation.control.addons import broken_weights

    weights = tmp_path / "diffusion_pytorch_model.safetensors"
    header = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    weights.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 4)
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read whole") if self == weights else real(self))
    assert broken_weights([weights]) == ""
    weights.write_bytes(len(header).to_bytes(8, "little") + header)  # its tensor's bytes are gone
    assert "cut short" in broken_weights([weights])
