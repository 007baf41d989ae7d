"""The REST API: tokens, the async job pattern, errors, limits, CORS, and schema fuzzing."""

import io
import zipfile

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from generation.models import ApiToken, Favorite, GenerationJob, JobStatus
from generation.tokens import token_create
from generation.worker import run as worker_run
from tests.test_workflow import finished_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(alice) -> str:
    return token_create(user=alice, name="tests")[1]


@pytest.fixture
def api(token) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def preset_slug(preset) -> str:
    return preset.slug


def submit(api: Client, **fields):
    body = {"asset_type": "test-icon", "description": "a flat blue circle", "variations": 2} | fields
    return api.post("/api/v1/jobs", body, content_type="application/json")


class TestTokens:
    def test_a_token_is_shown_once_and_stored_hashed(self, alice_client, alice) -> None:
        page = alice_client.post(reverse("profile"), {"name": "Figma"}).content.decode()
        token = ApiToken.objects.get(user=alice)
        secret = page.split('id="new-token">')[1].split("<")[0]
        assert secret.startswith("bst_") and secret not in token.key_hash and token.prefix == secret[:10]
        assert secret not in alice_client.get(reverse("profile")).content.decode()
        assert Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/v1/models").status_code == 200

    def test_a_revoked_token_stops_working(self, alice_client, alice, token) -> None:
        api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert api.get("/api/v1/models").status_code == 200
        alice_client.post(reverse("profile"), {"revoke": ApiToken.objects.get().pk})
        response = api.get("/api/v1/models")
        assert response.status_code == 401 and "token" in response.json()["message"]

    def test_a_signed_in_browser_session_does_not_authenticate_the_api(self, alice_client) -> None:
        assert alice_client.get("/api/v1/models").status_code == 401


class TestJobs:
    def test_submit_then_follow_a_job_to_its_images(self, api, preset_slug) -> None:
        response = submit(api, seed=10)
        assert response.status_code == 202
        body = response.json()
        assert body["status"] == "queued" and body["images_total"] == 2 and body["images"] == []
        worker_run.run_job(body["id"], worker="gpu@test")
        body = api.get(f"/api/v1/jobs/{body['id']}").json()
        assert body["status"] == "complete" and body["progress"] == 1.0
        assert [image["seed"] for image in body["images"]] == [10, 11]
        png = api.get(body["images"][0]["png_url"])
        assert png.status_code == 200 and Image.open(io.BytesIO(b"".join(png.streaming_content))).size == (64, 64)
        webp = api.get(body["images"][0]["webp_url"])
        assert webp["Content-Type"] == "image/webp"
        archive = zipfile.ZipFile(io.BytesIO(b"".join(api.get(body["zip_url"]).streaming_content)))
        assert len(archive.namelist()) == 2

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"asset_type": "poster"}, "asset_type", "available asset types"),
            ({"description": ""}, "description", "at least 1 character"),
            ({"variations": 99}, "variations", "less than or equal to 8"),
            ({"size": "4000x4000"}, "size", "not a size for"),
            ({"model": "flux-9000"}, "model", "available models"),
            ({"quality": "best"}, "quality", "Input should be"),
        ],
    )
    def test_bad_input_is_a_422_naming_the_field(self, api, preset_slug, fields, field, message) -> None:
        response = submit(api, **fields)
        assert response.status_code == 422, response.content
        assert response.json()["field"] == field and message in response.json()["message"]
        assert not GenerationJob.objects.exists()

    def test_another_users_job_and_image_are_404(self, api, bob) -> None:
        theirs = finished_job(bob)
        assert api.get(f"/api/v1/jobs/{theirs.id}").status_code == 404
        image = theirs.images.first()
        assert api.get(f"/api/v1/images/{image.id}/file").status_code == 404
        assert (
            api.post(f"/api/v1/images/{image.id}/more-like-this", {}, content_type="application/json").status_code
            == 404
        )
        assert (
            api.post("/api/v1/favorites", {"image_id": str(image.id)}, content_type="application/json").status_code
            == 404
        )

    def test_regenerate_more_like_this_and_cancel(self, api, alice) -> None:
        job = finished_job(alice)
        again = api.post(f"/api/v1/jobs/{job.id}/regenerate", {"count": 3}, content_type="application/json")
        assert again.status_code == 202 and again.json()["images_total"] == 3
        image = job.images.first()
        varied = api.post(
            f"/api/v1/images/{image.id}/more-like-this", {"strength": "strong"}, content_type="application/json"
        )
        assert varied.status_code == 202
        assert GenerationJob.objects.get(pk=varied.json()["id"]).variation["strength"] == "strong"
        cancelled = api.post(f"/api/v1/jobs/{again.json()['id']}/cancel")
        assert cancelled.json()["status"] == JobStatus.CANCELLED

    def test_submitting_too_fast_is_a_429_with_retry_after(self, api, preset_slug, settings) -> None:
        settings.STUDIO_SUBMISSIONS_PER_MINUTE = 2
        assert submit(api).status_code == submit(api).status_code == 202
        response = submit(api)
        assert response.status_code == 429 and 1 <= int(response["Retry-After"]) <= 61
        assert GenerationJob.objects.count() == 2


class TestCatalogueHistoryFavorites:
    def test_asset_types_and_models_with_license_notices(self, api) -> None:
        types = {t["slug"]: t for t in api.get("/api/v1/asset-types").json()}
        assert "icon" in types and types["icon"]["sizes"]
        models = api.get("/api/v1/models").json()
        assert all("license_notice" in m for m in models) and any(m["key"] == "tiny-flux" for m in models)

    def test_history_pages_and_filters(self, api, alice) -> None:
        for n in range(3):
            finished_job(alice, prompt=f"lighthouse {n}")
        finished_job(alice, prompt="a key")
        body = api.get("/api/v1/history", {"q": "lighthouse"}).json()
        assert body["count"] == 3 and [j["description"] for j in body["jobs"]][0] == "lighthouse 2"
        assert api.get("/api/v1/history", {"status": "failed"}).json()["count"] == 0
        assert api.get("/api/v1/history", {"status": "nope"}).status_code == 422

    def test_favorites_add_list_remove(self, api, alice) -> None:
        image = finished_job(alice).images.first()
        body = {"image_id": str(image.id)}
        assert api.post("/api/v1/favorites", body, content_type="application/json").status_code == 201
        assert api.post("/api/v1/favorites", body, content_type="application/json").status_code == 200
        assert [f["id"] for f in api.get("/api/v1/favorites").json()] == [str(image.id)]
        assert api.delete(f"/api/v1/favorites/{image.id}").status_code == 204
        assert not Favorite.objects.exists()


class TestCorsAndDocs:
    def test_the_figma_plugins_null_origin_may_call_with_a_token(self, api) -> None:
        preflight = Client().options("/api/v1/jobs", HTTP_ORIGIN="null", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
        assert preflight.status_code == 204 and preflight["Access-Control-Allow-Origin"] == "null"
        assert "Authorization" in preflight["Access-Control-Allow-Headers"]
        assert "Access-Control-Allow-Credentials" not in preflight
        assert api.get("/api/v1/models", HTTP_ORIGIN="null")["Access-Control-Allow-Origin"] == "null"

    def test_other_origins_get_no_cors_headers(self, api) -> None:
        assert "Access-Control-Allow-Origin" not in api.get("/api/v1/models", HTTP_ORIGIN="https://evil.example")

    def test_the_schema_and_docs_are_served_from_the_code(self, client) -> None:
        schema = client.get("/api/v1/openapi.json").json()
        assert "/api/v1/jobs" in schema["paths"] and schema["info"]["title"] == "Brand Studio API"
        docs = client.get("/api/v1/docs").content.decode()
        assert "swagger" in docs.lower() and "cdn.jsdelivr" not in docs
