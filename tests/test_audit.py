"""The audit trail (django-simple-history): every change to the catalogue, made in the admin or
elsewhere, is kept with who made it, when and what it changed; staff read it on each object's
History page and across models on /ops/audit/; designers read none of it."""

import html
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from generation import ops
from generation.control import addons
from generation.models import AddOn, AssetPreset, BrandLora, ImageModel, PresetLora, Upscaler, catalogue
from tests.admin_forms import admin_change
from tests.factories import AssetPresetFactory, GenerationJobFactory, UserFactory

pytestmark = pytest.mark.django_db

# An asset type's page posts its two inlines' management forms; these are for one with none yet.
NO_INLINES = {f"{prefix}-{count}": "0" for prefix in ("preset_loras",) for count in ("TOTAL_FORMS", "INITIAL_FORMS")}


def changed_fields(record) -> set[str]:
    return set(record.diff_against(record.prev_record).changed_fields)


def tiny() -> ImageModel:
    return ImageModel.objects.get(key="tiny-flux")


# --- rows whose files the admin checks: the checks have their own tests, here they pass


@pytest.fixture
def lora_row(settings, tmp_path, monkeypatch) -> BrandLora:
    settings.STUDIO_LORA_ROOT = tmp_path / "loras"
    (tmp_path / "loras" / "flux").mkdir(parents=True)
    (tmp_path / "loras" / "flux" / "icons-v1.safetensors").write_bytes(b"checked elsewhere")
    monkeypatch.setattr(catalogue, "validate", lambda path, **kwargs: ("diffusers", [], []))
    return BrandLora.objects.create(name="Icons", family="flux", file="flux/icons-v1.safetensors")


@pytest.fixture
def addon_row(monkeypatch) -> AddOn:
    monkeypatch.setattr(addons, "addon_problems", lambda addon: [])
    return AddOn.objects.create(
        key="style", name="Style", family="flux", local_path="ip-adapter", license_name="MIT", commercial_use=True
    )


@pytest.fixture
def upscaler_row(settings, tmp_path, monkeypatch) -> Upscaler:
    settings.STUDIO_UPSCALERS_DIR = tmp_path
    (tmp_path / "tiny-4x.safetensors").write_bytes(b"checked elsewhere")
    read = {"scale": 4, "architecture": "ESRGAN", "half": True}
    monkeypatch.setattr(catalogue, "inspect_in_subprocess", lambda path: read)
    return Upscaler.objects.create(
        key="tiny", name="Tiny", file="tiny-4x.safetensors", license_name="MIT", commercial_use=True
    )


@pytest.fixture
def model_row() -> ImageModel:
    return tiny()


# --- the admin records who, when and what


def test_an_admin_edit_of_an_asset_type_is_recorded_with_the_staff_user_the_time_and_the_fields(
    card_admin_client, preset
) -> None:
    before = timezone.now()
    admin_change(card_admin_client, preset, negative_prompt="blurry, text", description="App bar", **NO_INLINES)
    assert AssetPreset.objects.get(pk=preset.pk).negative_prompt == "blurry, text"
    record = preset.history.first()
    assert record.history_type == "~" and record.history_user.username == "ada"
    assert before <= record.history_date <= timezone.now()
    assert changed_fields(record) == {"negative_prompt", "description"}


@pytest.mark.parametrize(
    ("row", "changes"),
    [
        ("model_row", {"name": "Tiny FLUX (tests)", "subjects": '["circle", "star"]'}),
        ("lora_row", {"trigger_words": "brandicon style"}),
        ("addon_row", {"license_notice": "MIT, see LICENSE"}),
        ("upscaler_row", {"name": "Tiny 4x"}),
    ],
)
def test_an_admin_edit_of_a_model_a_lora_an_addon_or_an_upscaler_is_recorded(
    card_admin_client, request, row, changes
) -> None:
    row = request.getfixturevalue(row)
    before = timezone.now()
    response = admin_change(card_admin_client, row, **changes)
    assert response.redirect_chain, response.context["adminform"].form.errors  # saved: back to the list
    record = row.history.first()
    assert record.history_type == "~" and record.history_user.username == "ada"
    assert before <= record.history_date <= timezone.now()
    assert changed_fields(record) == set(changes)


def test_a_lora_added_on_the_asset_type_page_is_recorded_with_the_staff_user(
    card_admin_client, preset, lora_row
) -> None:
    inline = {"preset_loras-TOTAL_FORMS": "1", "preset_loras-0-lora": str(lora_row.pk)}
    inline |= {"preset_loras-0-strength": "0.8", "preset_loras-0-position": "0"}
    admin_change(card_admin_client, preset, **(NO_INLINES | inline))
    link = PresetLora.objects.get(preset=preset)
    record = link.history.get()  # an inline is saved outside save_model: the user comes from the middleware
    assert record.history_type == "+" and record.history_user.username == "ada"


def test_the_history_page_shows_who_changed_what_with_json_written_as_json(card_admin_client) -> None:
    admin_change(card_admin_client, tiny(), subjects='["circle", "star"]')
    page = card_admin_client.get(reverse("admin:generation_imagemodel_history", args=[tiny().pk])).content.decode()
    assert "ada" in page
    assert "<strong>Subjects:</strong>" in page
    assert '[] → ["circle", "star"]' in " ".join(html.unescape(page).split())


def test_a_json_object_change_shows_only_the_keys_that_changed() -> None:
    model = tiny()
    model.options = {"memory_mode": "model_offload", "speed": {"compile": "gpu"}}
    model.save()
    model.options = {"memory_mode": "sequential_offload", "speed": {"compile": "gpu"}, "gguf": "q8.gguf"}
    model.save()
    [change] = ops.changes_of(ImageModel, model.history.first())
    assert change["field"] == "Options"
    assert html.unescape(change["old"]) == '{"memory_mode": "model_offload", …}'
    assert html.unescape(change["new"]) == '{"gguf": "q8.gguf", "memory_mode": "sequential_offload", …}'


def test_a_past_version_is_read_only(card_admin_client, preset) -> None:
    admin_change(card_admin_client, preset, name="Renamed", **NO_INLINES)
    old = preset.history.last()
    url = reverse("admin:generation_assetpreset_simple_history", args=[preset.pk, old.history_id])
    assert card_admin_client.get(url).status_code == 200
    assert card_admin_client.post(url, {"name": old.name}).status_code == 403
    assert AssetPreset.objects.get(pk=preset.pk).name == "Renamed"


def test_a_model_outside_the_trail_keeps_the_admins_own_history_page(card_admin_client) -> None:
    job = GenerationJobFactory()
    response = card_admin_client.get(reverse("admin:generation_generationjob_history", args=[job.pk]))
    assert response.status_code == 200 and "admin/object_history.html" in [t.name for t in response.templates]


# --- preset versions and history side by side


def test_the_preset_version_still_counts_only_changes_to_what_it_renders(card_admin_client, preset) -> None:
    admin_change(card_admin_client, preset, description="Renamed only", **NO_INLINES)
    admin_change(card_admin_client, preset, steps="6", **NO_INLINES)
    assert AssetPreset.objects.get(pk=preset.pk).version == 2
    assert [record.version for record in preset.history.all()] == [2, 1, 1]  # newest first: each record's own
    page = card_admin_client.get(reverse("admin:generation_assetpreset_history", args=[preset.pk])).content.decode()
    assert "<strong>Steps:</strong>" in page


# --- outside the admin


def test_a_change_made_outside_a_request_is_recorded_without_a_user(staff_client) -> None:
    AssetPresetFactory(slug="scripted", name="Scripted")  # a command, a task, the shell
    record = AssetPreset.objects.get(slug="scripted").history.get()
    assert record.history_user is None
    assert "no user (a command, a task or a migration)" in staff_client.get(reverse("ops-audit")).content.decode()


def test_rows_that_existed_before_the_trail_start_with_a_first_record() -> None:
    first = tiny().history.earliest()
    assert (first.history_type, first.history_change_reason) == ("+", "Audit trail started")


# --- the audit page


@pytest.fixture
def staff_client(client):
    UserFactory(username="sam", is_staff=True)
    client.login(username="sam", password="correct horse battery staple")
    return client


def changes_in_order(user) -> None:
    """An asset type, then a model, then the asset type again, a second apart."""
    preset, model = AssetPresetFactory(slug="audited", name="First"), tiny()
    start = timezone.now()
    for seconds, row, name in [(1, preset, "Second"), (2, model, "Tiny renamed"), (3, preset, "Third")]:
        row.name, row._history_user, row._history_date = name, user, start + timedelta(seconds=seconds)
        row.save()


def test_the_audit_page_lists_changes_newest_first_with_who_and_what(staff_client) -> None:
    changes_in_order(UserFactory(username="ada"))
    page = staff_client.get(reverse("ops-audit"))
    rows = page.context["rows"]
    assert [(row.model, row.record.name) for row in rows[:3]] == [
        (AssetPreset, "Third"),
        (ImageModel, "Tiny renamed"),
        (AssetPreset, "Second"),
    ]
    dates = [row.record.history_date for row in rows]
    assert dates == sorted(dates, reverse=True)
    assert str(rows[0].record.history_user) == "ada"
    assert [(c["field"], c["old"], c["new"]) for c in rows[0].changes] == [("Name", "Second", "Third")]
    text = page.content.decode()
    assert "Second &rarr; Third" in text
    assert reverse("admin:generation_assetpreset_history", args=[rows[0].record.id]) in text


def test_the_audit_page_filters_by_model_and_pages(staff_client, monkeypatch) -> None:
    changes_in_order(UserFactory(username="ada"))
    rows = staff_client.get(reverse("ops-audit"), {"model": "imagemodel"}).context["rows"]
    assert {row.model for row in rows} == {ImageModel} and rows[0].record.name == "Tiny renamed"
    monkeypatch.setattr(ops, "AUDIT_PAGE_SIZE", 2)
    second = staff_client.get(reverse("ops-audit"), {"model": "assetpreset", "page": "2"})
    assert [row.record.name for row in second.context["rows"]][:1] == ["First"]  # its creation
    assert "model=assetpreset&amp;page=1" in second.content.decode()


def test_an_inline_row_is_named_with_the_asset_type_it_is_on(staff_client, preset, lora_row) -> None:
    PresetLora.objects.create(preset=preset, lora=lora_row, strength=0.8)
    row = staff_client.get(reverse("ops-audit"), {"model": "presetlora"}).context["rows"][0]
    assert row.label == "Test Icon › Icons × 0.8"
    assert row.url == reverse("admin:generation_assetpreset_change", args=[preset.pk])


def test_a_deleted_asset_type_and_its_lora_links_stay_on_the_trail(card_admin_client, preset, lora_row) -> None:
    link = PresetLora.objects.create(preset=preset, lora=lora_row, strength=0.8)
    url = reverse("admin:generation_assetpreset_delete", args=[preset.pk])
    assert card_admin_client.post(url, {"post": "yes"}).status_code == 302
    gone = [AssetPreset.history.filter(id=preset.pk).first(), PresetLora.history.filter(id=link.pk).first()]
    assert [(record.history_type, record.history_user.username) for record in gone] == [("-", "ada"), ("-", "ada")]
    rows = card_admin_client.get(reverse("ops-audit")).context["rows"]
    assert {(row.kind, row.label, row.url) for row in rows[:2]} == {
        ("Asset preset", "Test Icon", reverse("admin:generation_assetpreset_history", args=[preset.pk])),
        ("Preset lora", "Icons × 0.8", ""),  # its asset type is gone: named alone, no page to link
    }
    history = reverse("admin:generation_assetpreset_history", args=[preset.pk])
    assert card_admin_client.get(history).status_code == 200  # a deleted object's History still opens


@pytest.mark.parametrize("url", ["/ops/audit/", "/admin/generation/assetpreset/1/history/"])
def test_a_designer_cannot_read_the_trail(alice_client, url) -> None:
    response = alice_client.get(url)
    assert response.status_code == 302 and response.url.startswith("/admin/login/")
