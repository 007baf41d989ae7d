"""The review and library resources of the API, as the CLI and the Figma plugin use them."""

import pytest

from generation.models import ReviewStatus, Submission
from generation.review import services
from tests.factories import GeneratedImageFactory, SubmissionFactory
from tests.review.conftest import api_client, unlicensed

pytestmark = pytest.mark.django_db
JSON = "application/json"


@pytest.fixture
def alice_api(alice):
    return api_client(alice)


@pytest.fixture
def bob_api(bob):
    return api_client(bob)


@pytest.fixture
def charlie_api(charlie):
    return api_client(charlie)


def test_alice_submits_bob_approves_charlie_finds_it_in_the_library(alice_api, bob_api, charlie_api, image) -> None:
    response = alice_api.post(
        "/api/v1/submissions",
        {"image_ids": [str(image.pk)], "note": "For onboarding", "tags": ["Onboarding", "icons"]},
        content_type=JSON,
    )
    assert response.status_code == 201
    [mine] = response.json()
    assert (mine["status"], mine["tags"], mine["note"], mine["submitted_by"]) == (
        "pending",
        ["icons", "onboarding"],  # in order of name
        "For onboarding",
        "alice",
    )
    assert mine["lineage"]["description"] == "a rocket over the city" and mine["lineage"]["kit"] is None
    assert mine["lineage"]["model"]["key"] == "tiny-flux" and mine["can_be_approved"] is True

    [queued] = bob_api.get("/api/v1/reviews").json()["items"]
    assert queued["id"] == mine["id"]
    assert bob_api.get(queued["thumbnail_url"]).status_code == 200
    decided = bob_api.post(f"/api/v1/reviews/{mine['id']}", {"approve": True, "comment": "Crisp"}, content_type=JSON)
    assert decided.status_code == 200
    assert (decided.json()["status"], decided.json()["reviewer"], decided.json()["library_item_id"]) == (
        "approved",
        "bob",
        mine["id"],
    )
    assert alice_api.get("/api/v1/submissions").json()["items"][0]["comment"] == "Crisp"

    assert charlie_api.get("/api/v1/submissions").json()["count"] == 0
    assert charlie_api.get(f"/api/v1/submissions/{mine['id']}").status_code == 404
    assert charlie_api.get("/api/v1/reviews").status_code == 403
    library = charlie_api.get("/api/v1/library", {"tag": "icons", "q": "rocket"}).json()
    [item] = library["items"]
    assert library["count"] == 1 and item["id"] == mine["id"] and item["image_id"] == str(image.pk)
    assert item["asset_type"] == image.job.preset.slug and item["approved_by"] == "bob"
    assert item["colours"] and item["colours"][0]["hex"].startswith("#")
    assert item["svg_url"].endswith("?format=svg") and item["lineage_url"].endswith(f"/library/{mine['id']}/")
    assert set(item) >= {"thumbnail_url", "png_url", "webp_url", "approved_at", "description", "lineage"}
    png = charlie_api.get(item["png_url"])
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert b"DigitalSourceType" in b"".join(png.streaming_content)
    svg = charlie_api.get(item["svg_url"])
    assert svg.status_code == 200 and svg["Content-Security-Policy"].startswith("default-src 'none'")
    assert charlie_api.get(item["thumbnail_url"]).status_code == 200
    assert charlie_api.get(f"/api/v1/library/{mine['id']}").json()["id"] == mine["id"]


def test_submitting_someone_elses_image_is_a_404_and_makes_nothing(charlie_api, alice, charlie) -> None:
    own = GeneratedImageFactory(job__owner=charlie)
    alices = GeneratedImageFactory(job__owner=alice)
    body = {"image_ids": [str(own.pk), str(alices.pk)]}
    response = charlie_api.post("/api/v1/submissions", body, content_type=JSON)
    assert response.status_code == 404 and "not yours" in response.json()["message"]
    assert not Submission.objects.exists()


def test_a_second_submission_of_a_waiting_image_is_a_409(alice_api, image) -> None:
    SubmissionFactory(image=image)
    response = alice_api.post("/api/v1/submissions", {"image_ids": [str(image.pk)]}, content_type=JSON)
    assert response.status_code == 409 and "already waiting for review" in response.json()["message"]


def test_approving_ones_own_submission_is_a_403_with_a_message(bob, bob_api) -> None:
    own = SubmissionFactory(image=GeneratedImageFactory(job__owner=bob))
    response = bob_api.post(f"/api/v1/reviews/{own.pk}", {"approve": True}, content_type=JSON)
    assert response.status_code == 403 and "their own submission" in response.json()["message"]
    assert Submission.objects.get(pk=own.pk).status == ReviewStatus.PENDING


def test_a_decision_on_a_decided_or_retired_submission_is_a_409(bob, sam, bob_api, image) -> None:
    submission = SubmissionFactory(image=image)
    body = {"approve": True}
    assert bob_api.post(f"/api/v1/reviews/{submission.pk}", body, content_type=JSON).status_code == 200
    again = bob_api.post(f"/api/v1/reviews/{submission.pk}", {"approve": False, "comment": "x"}, content_type=JSON)
    assert again.status_code == 409 and "decided already" in again.json()["message"]
    services.library_retire(user=sam, item=Submission.objects.get(pk=submission.pk))
    retired = bob_api.post(f"/api/v1/reviews/{submission.pk}", body, content_type=JSON)
    assert retired.status_code == 409 and "retired" in retired.json()["message"]


def test_an_unlicensed_image_cannot_be_approved_and_the_api_says_why(alice_api, bob_api, image) -> None:
    submitted = alice_api.post("/api/v1/submissions", {"image_ids": [str(unlicensed(image).pk)]}, content_type=JSON)
    [mine] = submitted.json()
    assert mine["can_be_approved"] is False and "Research only" in mine["why_not"]
    response = bob_api.post(f"/api/v1/reviews/{mine['id']}", {"approve": True}, content_type=JSON)
    assert response.status_code == 409 and "not licensed for production" in response.json()["message"]
    assert Submission.objects.get(pk=mine["id"]).status == ReviewStatus.PENDING


def test_a_decision_without_approve_or_a_comment_for_changes_is_a_422(bob_api, image) -> None:
    submission = SubmissionFactory(image=image)
    missing = bob_api.post(f"/api/v1/reviews/{submission.pk}", {}, content_type=JSON)
    assert missing.status_code == 422 and missing.json()["field"] == "approve"
    bare = bob_api.post(f"/api/v1/reviews/{submission.pk}", {"approve": False}, content_type=JSON)
    assert bare.status_code == 422 and bare.json()["field"] == "comment"


def test_library_filters_that_cannot_be_read_are_a_422_naming_them(charlie_api) -> None:
    colour = charlie_api.get("/api/v1/library", {"colour": "sky-ish"})
    assert colour.status_code == 422 and colour.json()["field"] == "colour"
    dates = charlie_api.get("/api/v1/library", {"since": "2027-02-01", "until": "2027-01-01"})
    assert dates.status_code == 422 and dates.json()["field"] == "since"
    assert charlie_api.get("/api/v1/library", {"since": "soon"}).status_code == 422


def test_staff_retire_through_the_api_and_designers_cannot(bob, sam, charlie_api, image) -> None:
    item = services.submission_decide(reviewer=bob, submission=SubmissionFactory(image=image), approve=True, comment="")
    refused = charlie_api.post(f"/api/v1/library/{item.pk}/retire", content_type=JSON)
    assert refused.status_code == 403 and Submission.objects.get(pk=item.pk).retired_at is None
    sam_api = api_client(sam)
    retired = sam_api.post(f"/api/v1/library/{item.pk}/retire", content_type=JSON)
    assert retired.status_code == 200 and retired.json()["retired"] is True
    assert sam_api.post(f"/api/v1/library/{item.pk}/retire", content_type=JSON).status_code == 409
    assert charlie_api.get(f"/api/v1/library/{item.pk}/download").status_code == 404
    assert sam_api.get("/api/v1/library").json()["items"][0]["retired"] is True


def test_the_schema_documents_the_review_and_library_shapes(charlie_api) -> None:
    schema = charlie_api.get("/api/v1/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/v1/submissions", "/api/v1/reviews", "/api/v1/reviews/{submission_id}", "/api/v1/library"} <= paths
    assert {"/api/v1/library/{item_id}/download", "/api/v1/library/{item_id}/retire"} <= paths
    assert {"SubmissionOut", "LibraryItemOut", "LineageOut", "SubmitIn", "DecisionIn"} <= set(
        schema["components"]["schemas"]
    )


def test_the_lineage_names_the_brand_kit_and_its_version_where_the_job_recorded_one(bob_api, bob_client, image) -> None:
    from django.urls import reverse

    image.job.params["kit"] = {"slug": "contoso", "name": "Contoso", "version": 3}
    image.job.save(update_fields=["params"])
    submission = SubmissionFactory(image=image)
    [queued] = bob_api.get("/api/v1/reviews").json()["items"]
    assert queued["lineage"]["kit"] == {"slug": "contoso", "name": "Contoso", "version": 3}
    assert "kit Contoso v3" in bob_client.get(reverse("review-queue")).content.decode()
    assert "Contoso" in bob_client.get(submission.get_absolute_url()).content.decode()
