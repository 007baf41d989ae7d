"""Finishing in the REST API: compliance, alpha, SVG and WebP files, the job's plan, history by score."""

import io

import pytest
from django.test import Client
from PIL import Image

from generation.tokens import token_create
from tests.factories import SVG_TEXT, FinishedJobFactory, GeneratedImageFactory, GenerationJobFactory, icon_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(alice) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=alice, name='tests')[1]}")


def traced_image(owner, **fields):
    return GeneratedImageFactory(traced=True, job=FinishedJobFactory(owner=owner), **fields)


def plain_image(owner, **fields):
    """An image of an asset type without palette or tracing, as a Photo would be."""
    job = FinishedJobFactory(owner=owner, plan=icon_plan(palette=None, correct=False, transparent=False, svg=False))
    return GeneratedImageFactory(job=job, **fields)


def image_json(api: Client, image) -> dict:
    return api.get(f"/api/v1/jobs/{image.job_id}").json()["images"][image.index]


class TestImageJson:
    def test_a_traced_image_carries_its_scores_alpha_svg_url_and_finishing_record(self, api, alice) -> None:
        image = traced_image(alice)
        body = image_json(api, image)
        assert body["compliance"] == {"before": 0.81, "after": 0.99, "floor": 0.9, "flagged": False}
        assert body["has_alpha"] is True
        assert body["svg_url"].endswith(f"/api/v1/images/{image.id}/file?format=svg")
        assert body["webp_url"].endswith("?format=webp")
        assert [stage["stage"] for stage in body["finishing"]] == ["size", "palette", "svg"]
        assert body["finishing"][0]["settings"]["upscaler"] == "Lanczos"

    def test_an_image_below_its_jobs_floor_is_flagged(self, api, alice) -> None:
        image = traced_image(alice, compliance_after=0.62)
        assert image_json(api, image)["compliance"] == {"before": 0.81, "after": 0.62, "floor": 0.9, "flagged": True}

    def test_an_image_without_palette_or_svg_has_null_scores_and_no_svg_url(self, api, alice) -> None:
        body = image_json(api, plain_image(alice))
        assert body["compliance"] == {"before": None, "after": None, "floor": 0.9, "flagged": False}
        assert body["svg_url"] is None and body["has_alpha"] is False and body["finishing"] == []

    def test_images_of_jobs_from_before_finishing_have_no_floor(self, api, alice) -> None:
        image = GeneratedImageFactory(job=GenerationJobFactory(owner=alice, status="complete"))
        assert image_json(api, image)["compliance"]["floor"] is None

    def test_favorites_list_images_with_their_scores(self, api, alice) -> None:
        image = traced_image(alice)
        api.post("/api/v1/favorites", {"image_id": str(image.id)}, content_type="application/json")
        [listed] = api.get("/api/v1/favorites").json()
        assert listed["compliance"]["after"] == 0.99 and listed["svg_url"]


class TestFiles:
    def test_the_svg_is_served_as_svg_that_cannot_script_or_be_sniffed(self, api, alice) -> None:
        image = traced_image(alice)
        response = api.get(f"/api/v1/images/{image.id}/file", {"format": "svg"})
        assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
        assert response["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'; sandbox"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Disposition"].startswith("attachment;") and ".svg" in response["Content-Disposition"]
        assert b"".join(response.streaming_content).decode() == SVG_TEXT

    def test_an_svg_of_an_asset_type_that_is_not_traced_is_a_404_saying_so(self, api, alice) -> None:
        response = api.get(f"/api/v1/images/{plain_image(alice).id}/file", {"format": "svg"})
        assert response.status_code == 404 and response["Content-Type"].startswith("application/json")
        assert response.json()["message"].startswith("This asset type is not traced to SVG")

    def test_a_traced_asset_types_image_whose_svg_is_missing_says_tracing_did_not_finish(self, api, alice) -> None:
        image = GeneratedImageFactory(job=FinishedJobFactory(owner=alice))
        response = api.get(f"/api/v1/images/{image.id}/file", {"format": "svg"})
        assert response.status_code == 404 and "tracing did not finish" in response.json()["message"]

    def test_bob_cannot_download_alices_svg(self, alice, bob) -> None:
        image = traced_image(alice)
        bob_api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=bob, name='b')[1]}")
        assert bob_api.get(f"/api/v1/images/{image.id}/file", {"format": "svg"}).status_code == 404

    def test_webp_is_the_stored_full_size_one_with_its_alpha(self, api, alice) -> None:
        image = traced_image(alice)
        response = api.get(f"/api/v1/images/{image.id}/file", {"format": "webp"})
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
        webp = Image.open(io.BytesIO(b"".join(response.streaming_content)))
        assert webp.mode == "RGBA" and webp.size == (64, 64)

    def test_webp_of_an_image_without_a_stored_one_is_made_from_the_png(self, api, alice) -> None:
        response = api.get(f"/api/v1/images/{plain_image(alice).id}/file", {"format": "webp"})
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
        assert Image.open(io.BytesIO(response.content)).format == "WEBP"

    def test_the_schema_documents_the_three_formats(self, client) -> None:
        operation = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/images/{image_id}/file"]["get"]
        assert set(operation["responses"]["200"]["content"]) == {"image/png", "image/webp", "image/svg+xml"}
        [fmt] = [p for p in operation["parameters"] if p["name"] == "format"]
        assert fmt["schema"]["enum"] == ["png", "webp", "svg"]


class TestJobPlan:
    def test_a_job_says_what_finishing_will_do(self, api, alice) -> None:
        notes = ("No upscaler installed: Lanczos",)
        job = FinishedJobFactory(owner=alice, plan=icon_plan(output_size=(128, 128), upscale=2, notes=notes))
        assert api.get(f"/api/v1/jobs/{job.id}").json()["finishing"] == {
            "output_size": "128x128",
            "upscale": 2,
            "upscaler": "Lanczos",
            "stages": ["upscale", "compliance", "palette", "transparent", "svg"],
            "notes": ["No upscaler installed: Lanczos"],
        }

    def test_a_planned_upscaler_and_refiner_are_named(self, api, alice) -> None:
        upscaler = {"key": "demo-4x", "name": "Demo icons 4x", "file": "demo.pth", "scale": 4}
        upscaler |= {"architecture": "ESRGAN", "half": False}
        plan = icon_plan(upscale=4, upscaler=upscaler, refine_strength=0.3, sharpen_radius=1.0, sharpen_amount=50)
        body = api.get(f"/api/v1/jobs/{FinishedJobFactory(owner=alice, plan=plan).id}").json()["finishing"]
        assert body["upscaler"] == "Demo icons 4x"
        assert body["stages"] == ["refine", "upscale", "compliance", "palette", "sharpen", "transparent", "svg"]

    def test_jobs_from_before_finishing_have_no_plan(self, api, alice) -> None:
        job = GenerationJobFactory(owner=alice)
        job.params.pop("finishing", None)
        job.save()
        assert api.get(f"/api/v1/jobs/{job.id}").json()["finishing"] is None


class TestHistoryByCompliance:
    @pytest.fixture
    def scored(self, alice) -> dict[str, object]:
        """Three jobs whose best images score 0.99, 0.7 and 0.95, and one without scores."""
        jobs = {}
        for prompt, scores in {"high": [0.99, 0.5], "low": [0.7], "mid": [0.95, 0.8], "none": [None]}.items():
            job = FinishedJobFactory(owner=alice, prompt=prompt)
            for index, score in enumerate(scores):
                GeneratedImageFactory(job=job, index=index, compliance_after=score)
            jobs[prompt] = job
        return jobs

    def prompts(self, api: Client, **params) -> list[str]:
        response = api.get("/api/v1/history", params)
        assert response.status_code == 200, response.json()
        return [job["description"] for job in response.json()["jobs"]]

    def test_a_minimum_keeps_jobs_with_an_image_at_least_that_on_brand(self, api, scored) -> None:
        assert self.prompts(api, min_compliance=0.9) == ["mid", "high"]
        assert self.prompts(api, min_compliance=0.9, max_compliance=0.96) == ["mid"]
        assert self.prompts(api, max_compliance=0.6) == ["high"]

    def test_history_sorts_by_the_best_images_compliance_both_ways_unscored_last(self, api, scored) -> None:
        assert self.prompts(api, sort="-compliance") == ["high", "mid", "low", "none"]
        assert self.prompts(api, sort="compliance") == ["low", "mid", "high", "none"]
        assert self.prompts(api, sort="created") == ["high", "low", "mid", "none"]
        assert self.prompts(api) == ["none", "mid", "low", "high"]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"min_compliance": 1.5}, "min_compliance"),
            ({"max_compliance": -0.1}, "max_compliance"),
            ({"sort": "seed"}, "sort"),
            ({"min_compliance": 0.9, "max_compliance": 0.5}, "min_compliance"),
        ],
    )
    def test_out_of_range_scores_and_unknown_orders_are_a_422(self, api, params, field) -> None:
        response = api.get("/api/v1/history", params)
        assert response.status_code == 422 and response.json()["field"] == field
