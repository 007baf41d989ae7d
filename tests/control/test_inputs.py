"""Bad input is a clear message, never a 500: studio PNGs, token forms, text Postgres cannot
hold (in every form, admin form and API schema), API body types and sizes, decompression
bombs on the training pages, model options in the admin, and a finished job's progress."""

import ast
import io
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from django import forms
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.test import Client, RequestFactory
from django.urls import get_resolver, reverse
from PIL import Image, PngImagePlugin

from generation.models import ApiToken, AssetPreset, GenerationJob, ImageModel, JobStatus, TrainingImage, TrainingSet
from generation.tokens import token_create
from tests.admin_forms import admin_change
from tests.factories import PASSWORD, GenerationJobFactory, UserFactory, leased

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
BAD_TEXT = {"a NUL": "a\x00b", "a lone surrogate": "a\ud800b"}
UNSTORABLE = "cannot be stored"


@pytest.fixture
def staff(db):
    return UserFactory(username="sam", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    assert client.login(username="sam", password=PASSWORD)
    return client


def png_with_text(text: str, size: tuple[int, int] = (8, 8)) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("brandstudio", text)
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size in its header (a decompression bomb needs no more than that)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


# --- 1. Restoring settings from a studio PNG


class TestRestoreFromAHostilePng:
    @pytest.mark.parametrize(
        ("metadata", "reason"),
        [
            ("5", "not the named settings"),
            ('"a string"', "not the named settings"),
            ("[1, 2]", "not the named settings"),
            ('{"settings": 5}', "not the named settings"),
            ('{"settings": ["prompt"]}', "not the named settings"),
            ('{"settings": {"prompt": ["x"], "variations": {}}}', "prompt should be text"),
            ('{"settings": {"variations": "4"}}', "variations should be a whole number"),
            ('{"settings": {"seed": true}}', "seed should be a whole number"),
            ('{"settings": {"variations": 0}}', "variations should be at least 1"),
            ('{"settings": {"prompt": "a key\\u0000"}}', "prompt holds characters that cannot be stored"),
            ('{"settings": {"prompt": "a key\\ud800"}}', "prompt holds characters that cannot be stored"),
            (json.dumps({"settings": {"prompt": "x" * 5000}}), "prompt should be at most 1000 characters"),
            ("[" * 100_000, "not readable JSON"),
            ("{not json", "not readable JSON"),
        ],
    )
    def test_malformed_settings_are_a_message_that_says_what_is_wrong(self, alice_client, metadata, reason) -> None:
        upload = SimpleUploadedFile("hostile.png", png_with_text(metadata), content_type="image/png")
        response = alice_client.post(reverse("image-restore"), {"image": upload}, follow=True)
        page = response.content.decode()
        assert response.status_code == 200 and "settings in that PNG are damaged" in page and reason in page
        assert response.redirect_chain[-1][0] == reverse("studio")  # nothing restored

    def test_well_formed_settings_still_restore(self, alice_client) -> None:
        settings = {"preset": "icon", "prompt": "a gear", "variations": 2, "seed": 7, "size": "64x64", "extra": [1]}
        upload = SimpleUploadedFile("ok.png", png_with_text(json.dumps({"settings": settings})))
        initial = alice_client.post(reverse("image-restore"), {"image": upload}, follow=True).context["form"].initial
        assert initial["prompt"] == "a gear" and initial["seed"] == "7" and "extra" not in initial


# --- 2. Revoking a token


class TestTokenRevoke:
    @pytest.mark.parametrize("value", ["abc", "1e9999", "99999999999999999999999", "-1", ""])
    def test_a_revoke_with_an_id_that_is_no_token_id_is_a_message(self, alice_client, alice, value) -> None:
        token, _ = token_create(user=alice, name="laptop")
        response = alice_client.post(reverse("profile"), {"revoke": value}, follow=True)
        assert response.status_code == 200 and "That is not one of your tokens" in response.content.decode()
        assert ApiToken.objects.get(pk=token.pk).revoked_at is None

    def test_a_revoke_with_a_real_id_still_revokes(self, alice_client, alice) -> None:
        token, _ = token_create(user=alice, name="laptop")
        response = alice_client.post(reverse("profile"), {"revoke": str(token.pk)}, follow=True)
        assert "Token revoked" in response.content.decode()
        assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


# --- 3. Text the database cannot hold: through the real pages, on Postgres


class TestUnstorableTextOnThePages:
    """A form post cannot carry a lone surrogate (Django decodes bodies with replacement), NUL it
    can; the API's JSON can carry both (the enumeration below binds each form to both)."""

    def test_a_token_name_postgres_cannot_hold_is_a_form_error(self, alice_client, alice) -> None:
        response = alice_client.post(reverse("profile"), {"name": "Figma \x00"})
        assert response.status_code == 422 and UNSTORABLE in response.content.decode()
        assert not ApiToken.objects.filter(user=alice).exists()

    def test_a_token_name_is_required_and_kept_short(self, alice_client, alice) -> None:
        assert "Name the token" in alice_client.post(reverse("profile"), {"name": "  "}).content.decode()
        assert "under 100 characters" in alice_client.post(reverse("profile"), {"name": "x" * 101}).content.decode()
        assert not ApiToken.objects.filter(user=alice).exists()

    def test_a_caption_postgres_cannot_hold_is_a_form_error(self, staff_client, training_image) -> None:
        url = reverse("training-image", args=[training_image.pk])
        response = staff_client.post(url, {"caption": "a flat icon \x00"}, HTTP_HX_REQUEST="true")
        assert response.status_code == 422 and UNSTORABLE in response.content.decode()
        page = staff_client.post(url, {"caption": "\x00"}, follow=True).content.decode()
        assert UNSTORABLE in page and "circle.png" in page
        training_image.refresh_from_db()
        assert training_image.caption == "a blue circle"

    def test_a_good_caption_and_exclusion_still_save(self, staff_client, training_image) -> None:
        url = reverse("training-image", args=[training_image.pk])
        assert staff_client.post(url, {"caption": " a flat star "}, HTTP_HX_REQUEST="true").status_code == 200
        staff_client.post(url, {"excluded": "1"})
        training_image.refresh_from_db()
        assert training_image.caption == "a flat star" and training_image.excluded

    def test_a_caption_in_a_zip_that_postgres_cannot_hold_is_refused_with_its_image(self, training_set) -> None:
        from generation.training import data as training_data

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("circle.png", png_with_text("-", (32, 32)))
            archive.writestr("circle.txt", b"a flat \x00 circle")
        result = training_data.add_uploads(training_set, [SimpleUploadedFile("set.zip", buffer.getvalue())])
        assert not result.added and UNSTORABLE in result.rejected[0][1]

    def test_a_username_postgres_cannot_hold_is_a_sign_in_error(self) -> None:
        response = Client().post(reverse("login"), {"username": "alice\x00", "password": "x"})
        assert response.status_code == 200 and UNSTORABLE in response.content.decode()

    @pytest.mark.parametrize("bad", BAD_TEXT.values(), ids=BAD_TEXT.keys())
    def test_the_api_refuses_such_text_in_a_body_with_the_field(self, alice, preset, bad) -> None:
        api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
        body = json.dumps({"asset_type": preset.slug, "description": f"a key {bad}"}, ensure_ascii=True)
        response = api.post("/api/v1/jobs", body, content_type="application/json")
        assert response.status_code == 422 and response.json()["field"] == "description"
        assert UNSTORABLE in response.json()["message"] and not GenerationJob.objects.exists()


@pytest.fixture
def training_set(alice) -> TrainingSet:
    return TrainingSet.objects.create(name="Icons", preset=AssetPreset.objects.get(slug="icon"), family="flux")


@pytest.fixture
def training_image(training_set) -> TrainingImage:
    from django.core.files.base import ContentFile

    image = TrainingImage(training_set=training_set, original_name="circle.png", caption="a blue circle")
    image.width = image.height = 8
    image.file.save("circle.png", ContentFile(png_with_text("-")), save=True)
    return image


# --- 3. ...and in every form, admin form and API schema, found by enumeration


def project_forms() -> list[type[forms.BaseForm]]:
    """Every form class the project defines (the URLconf and the admin import them all)."""
    get_resolver().url_patterns  # noqa: B018  (imports every view module)

    def subclasses(cls: type) -> list[type]:
        return [cls, *(sub for child in cls.__subclasses__() for sub in subclasses(child))]

    found = {
        cls
        for cls in subclasses(forms.BaseForm)
        if cls.__module__.startswith(("generation.", "brandstudio."))
        and cls.__name__ not in ("StorableMixin", "StorableForm", "StorableModelForm")
    }
    return sorted(found, key=lambda cls: cls.__name__)


def form_classes_in_the_source() -> set[str]:
    """Names of classes whose bases look like forms, read from the source: none may be missed above."""
    names = set()
    for path in [*(ROOT / "generation").rglob("*.py"), *(ROOT / "brandstudio").rglob("*.py")]:
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(re.search(r"Form\b", ast.unparse(b)) for b in node.bases):
                names.add(node.name)
    return names - {"StorableMixin", "StorableForm", "StorableModelForm"}


def form_kwargs(cls: type, user, training_set) -> dict:
    needs = {"GenerateForm": {"user": user}, "CompareForm": {"user": user}, "BatchForm": {"user": user}}
    needs["RunForm"] = {"training_set": training_set}
    return needs.get(cls.__name__, {})


def assert_refuses_unstorable_text(make_form, label: str) -> int:
    """Bind each field in turn to text Postgres cannot hold; every field that takes text must refuse it."""
    checked = 0
    for name in list(make_form(QueryDict()).fields):
        for kind, bad in BAD_TEXT.items():
            data = QueryDict(mutable=True)
            for key in (name, f"{name}_0", f"{name}_1"):  # split widgets read name_0, name_1
                data.setlist(key, [bad])
            form = make_form(data)
            field = form.fields[name]
            if isinstance(field.widget, forms.CheckboxInput | forms.FileInput):
                continue  # no text reaches these fields: a checkbox is a bool, a file is a file
            assert not form.is_valid(), f"{label}.{name} accepted {kind}"
            assert UNSTORABLE in " ".join(form.errors.get(name, [])), f"{label}.{name}: {form.errors}"
            if isinstance(field, forms.JSONField):  # JSON escapes make the same characters
                form = make_form({name: json.dumps({"k": bad})})
                assert not form.is_valid() and UNSTORABLE in " ".join(form.errors.get(name, [])), f"{label}.{name}"
            checked += 1
    return checked


class TestEveryFormRefusesUnstorableText:
    def test_the_enumeration_finds_every_form_the_source_defines(self) -> None:
        found = {cls.__name__ for cls in project_forms()}
        assert form_classes_in_the_source() <= found
        assert {"GenerateForm", "TokenForm", "TrainingImageForm", "LoginForm", "TrainingSetForm"} <= found

    def test_every_project_form_refuses_nul_and_lone_surrogates_in_each_text_field(self, alice, training_set) -> None:
        from generation.forms import StorableMixin

        for cls in project_forms():
            assert issubclass(cls, StorableMixin), f"{cls.__name__} does not take StorableForm as its base"
            kwargs = form_kwargs(cls, alice, training_set)

            def make(data, cls=cls, kwargs=kwargs):
                return cls(data=data, **kwargs)

            assert_refuses_unstorable_text(make, cls.__name__)

    def test_every_admin_form_refuses_them_too(self, staff) -> None:
        from generation.forms import StorableMixin

        request = RequestFactory().get("/admin/")
        request.user = staff
        form_classes = []
        for model, model_admin in admin.site._registry.items():
            if model._meta.app_label != "generation":
                continue
            form_classes.append((model.__name__, model_admin.get_form(request)))
            if model_admin.list_editable:
                form_classes.append((f"{model.__name__} list", model_admin.get_changelist_form(request)))
            for inline in model_admin.get_inline_instances(request):
                form_classes.append((f"{model.__name__} inline", inline.get_formset(request).form))
        assert len(form_classes) >= 6
        checked = 0
        for label, cls in form_classes:
            assert issubclass(cls, StorableMixin), f"the {label} admin form does not take StorableModelForm"
            checked += assert_refuses_unstorable_text(lambda data, cls=cls: cls(data=data), label)
        assert checked > 20

    def test_every_api_input_schema_refuses_them_in_each_field(self) -> None:
        from pydantic import BaseModel, ValidationError

        from generation.api import api
        from generation.api.common import InputSchema

        api.urls  # noqa: B018  (builds the routers)
        schemas, plain = set(), []
        for _, router in api._routers:
            for view in router.path_operations.values():
                for operation in view.operations:
                    for model in operation.signature.models:
                        for name, field in model.model_fields.items():
                            kind = field.annotation
                            if isinstance(kind, type) and issubclass(kind, BaseModel):
                                schemas.add(kind)
                            else:
                                plain.append((name, kind))
        assert {s.__name__ for s in schemas} >= {"JobIn", "MoreIn", "VaryIn", "HistoryFilters", "FavoriteIn"}
        assert str not in [kind for _, kind in plain], f"a bare str parameter skips InputSchema: {plain}"
        for schema in schemas:
            assert issubclass(schema, InputSchema), f"{schema.__name__} does not take InputSchema as its base"
            for name in schema.model_fields:
                for kind, bad in BAD_TEXT.items():
                    with pytest.raises(ValidationError) as caught:
                        schema.model_validate({name: bad})
                    mine = [e for e in caught.value.errors() if e["loc"] == (name,) and e["type"] == "unstorable"]
                    assert mine, f"{schema.__name__}.{name} accepted {kind}"
                    with pytest.raises(ValidationError):
                        schema.model_validate({name: [bad]})


# --- 6. API bodies: JSON only, and a JSON error when too large


class TestApiBodies:
    @pytest.fixture
    def api(self, alice) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")

    @pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
    def test_a_body_that_is_not_declared_json_is_a_415_naming_the_type(self, api, preset, content_type) -> None:
        body = json.dumps({"asset_type": preset.slug, "description": "a key"})
        response = api.generic("POST", "/api/v1/jobs", body, content_type=content_type)
        assert response.status_code == 415 and response["Content-Type"].startswith("application/json")
        assert "application/json" in response.json()["message"] and not GenerationJob.objects.exists()

    def test_json_with_a_charset_is_still_json(self, api, preset) -> None:
        body = json.dumps({"asset_type": preset.slug, "description": "a key", "variations": 1})
        response = api.generic("POST", "/api/v1/jobs", body, content_type="application/json; charset=utf-8")
        assert response.status_code == 202

    def test_a_body_over_the_size_limit_is_a_413_in_json(self, api, preset, settings) -> None:
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        body = json.dumps({"asset_type": preset.slug, "description": "x" * 2000})
        response = api.post("/api/v1/jobs", body, content_type="application/json")
        assert response.status_code == 413 and response["Content-Type"].startswith("application/json")
        assert "1,000 bytes" in response.json()["message"] and not GenerationJob.objects.exists()

    def test_the_schema_documents_413_and_415_where_a_body_is_read(self, api) -> None:
        paths = api.get("/api/v1/openapi.json").json()["paths"]
        for path in ("/api/v1/jobs", "/api/v1/favorites", "/api/v1/jobs/{job_id}/regenerate"):
            assert {"413", "415"} <= set(paths[path]["post"]["responses"])
        assert "415" not in paths["/api/v1/jobs/{job_id}"]["get"]["responses"]


# --- 7. Decompression bombs on the training pages


class TestDecompressionBombs:
    @pytest.mark.parametrize(
        ("width", "height", "pixels"),
        [(8000, 8000, "64,000,000"), (20000, 20000, "400,000,000")],  # the second trips Pillow's own limit
    )
    def test_a_bomb_is_told_how_many_pixels_it_has_and_the_limit(
        self, staff_client, training_set, width, height, pixels
    ) -> None:
        upload = SimpleUploadedFile("bomb.png", png_header(width, height))
        url = reverse("training-set", args=[training_set.pk])
        page = staff_client.post(url, {"files": [upload]}, follow=True).content.decode()
        assert f"bomb.png: {width}×{height} is {pixels} pixels; the limit is 40,000,000" in page
        assert not training_set.images.exists()

    def test_a_bomb_inside_a_zip_is_told_the_same(self, staff_client, training_set) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("icons/bomb.png", png_header(20000, 20000))
        upload = SimpleUploadedFile("set.zip", buffer.getvalue())
        url = reverse("training-set", args=[training_set.pk])
        page = staff_client.post(url, {"files": [upload]}, follow=True).content.decode()
        assert "icons/bomb.png: 20000×20000 is 400,000,000 pixels; the limit is 40,000,000" in page

    def test_a_bomb_dropped_on_the_restore_form_is_told_it_is_too_large(self, alice_client) -> None:
        upload = SimpleUploadedFile("bomb.png", png_header(20000, 20000))
        page = alice_client.post(reverse("image-restore"), {"image": upload}, follow=True).content.decode()
        assert "larger than any the studio makes" in page


# --- 10. Model options in the admin


class TestModelOptionsInTheAdmin:
    def test_the_change_form_shows_the_options_and_what_each_means(self, staff_client) -> None:
        model = ImageModel.objects.get(key="tiny-flux")
        page = staff_client.get(reverse("admin:generation_imagemodel_change", args=[model.pk])).content.decode()
        assert 'name="options"' in page and "native_size" in page and "HiDream-I1 only" in page

    def test_valid_options_are_saved(self, staff_client) -> None:
        model = ImageModel.objects.get(key="tiny-flux")
        options = {"memory_mode": "model_offload", "native_size": 64, "max_sequence_length": 32}
        response = admin_change(staff_client, model, options=json.dumps(options))
        assert response.status_code == 200 and not response.context.get("errors")
        model.refresh_from_db()
        assert model.options == options

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"memory_mod": "gpu"}, "'memory_mod' is not an option of FLUX.1 models; known: gguf, max_sequence_"),
            ({"llama": "meta-llama/Llama-3.1-8B-Instruct"}, "'llama' is not an option of FLUX.1 models"),
            ({"memory_mode": "fast"}, "memory_mode must be one of auto, gpu, model_offload"),
            ({"native_size": "64"}, "native_size must be a whole number from 16 to 4096"),
            ({"native_size": True}, "native_size must be a whole number"),
            ({"max_sequence_length": 4096}, "max_sequence_length must be from 1 to 512, not 4096"),
            ({"true_cfg_scale": "2"}, "true_cfg_scale must be a number from 1 to 10, not"),
            ({"true_cfg_scale": 0.5}, "true_cfg_scale must be from 1 to 10, not 0.5"),
            ([1, 2], "Options are a JSON object"),
        ],
    )
    def test_wrong_options_are_refused_with_a_message(self, staff_client, options, message) -> None:
        model = ImageModel.objects.get(key="tiny-flux")
        before = model.options
        page = admin_change(staff_client, model, options=json.dumps(options)).content.decode()
        assert message.replace("'", "&#x27;") in page
        model.refresh_from_db()
        assert model.options == before

    def test_true_cfg_is_a_flux_option_taking_fractions(self) -> None:
        from generation.engine.options import option_errors

        assert option_errors("flux", {"true_cfg_scale": 1.75}) == option_errors("flux", {"true_cfg_scale": 3}) == []
        assert option_errors("sdxl", {"true_cfg_scale": 2})[0].startswith("'true_cfg_scale' is not an option of SDXL")

    def test_hidream_takes_its_llama_option(self) -> None:
        from generation.engine.options import option_errors

        assert option_errors("hidream", {"llama": "meta-llama/Llama-3.1-8B-Instruct"}) == []
        assert option_errors("hidream", {"llama": ""}) == ["llama must be a non-empty text, not ''."]


# --- 11. A finished job's progress


class TestFinishedJobProgress:
    def test_a_complete_job_reports_its_last_step_in_the_api(self, alice) -> None:
        from generation.worker import run as worker_run

        job = GenerationJobFactory(owner=alice, images_total=2)
        worker_run.run_job(str(job.pk), worker="gpu@test")
        api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='t')[1]}")
        body = api.get(f"/api/v1/jobs/{job.pk}").json()
        assert body["status"] == "complete" and body["progress"] == 1.0
        assert body["step"] == body["steps"] == job.params["steps"]

    def test_once_the_last_images_are_stored_the_page_does_not_say_step_0(self, alice, alice_client) -> None:
        from generation.worker import store as worker_store

        job = GenerationJobFactory(owner=alice, images_total=1, status=JobStatus.PROCESSING)
        GenerationJob.objects.filter(pk=job.pk).update(progress_step=4, progress_steps=4)
        worker_store.store_images(job, leased(job), 0, [Image.new("RGB", (64, 64), "white")])
        page = alice_client.get(reverse("job", args=[job.pk])).content.decode()
        assert "Step 4 of 4" in page and "Step 0 of" not in page
