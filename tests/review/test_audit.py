"""Approvals on the audit trail: who decided, when, and what changed, for staff to read."""

import pytest
from django.urls import reverse
from django.utils import timezone

from generation import ops
from generation.models import Submission
from generation.review import services
from tests.factories import SubmissionFactory
from tests.review.conftest import api_client

pytestmark = pytest.mark.django_db


def test_a_decision_is_recorded_with_the_reviewer_the_time_and_the_fields_it_changed(bob, image) -> None:
    submission = SubmissionFactory(image=image)
    before = timezone.now()
    services.submission_decide(reviewer=bob, submission=submission, approve=True, comment="Crisp")
    record = submission.history.first()
    assert record.history_type == "~" and record.history_user == bob
    assert before <= record.history_date <= timezone.now()
    assert set(record.diff_against(record.prev_record).changed_fields) == {
        "status",
        "reviewer",
        "comment",
        "decided_at",
    }


def test_a_submission_made_through_the_api_and_decided_there_is_on_the_trail_with_its_users(alice, bob, image) -> None:
    api_client(alice).post("/api/v1/submissions", {"image_ids": [str(image.pk)]}, content_type="application/json")
    submission = Submission.objects.get()
    api_client(bob).post(f"/api/v1/reviews/{submission.pk}", {"approve": True}, content_type="application/json")
    assert [(r.history_type, r.history_user.username) for r in submission.history.all()] == [
        ("~", "bob"),
        ("+", "alice"),
    ]


def test_a_retirement_is_recorded_with_the_staff_user(bob, sam, image) -> None:
    item = services.submission_decide(reviewer=bob, submission=SubmissionFactory(image=image), approve=True, comment="")
    services.library_retire(user=sam, item=item)
    record = item.history.first()
    assert record.history_user == sam and set(record.diff_against(record.prev_record).changed_fields) == {
        "retired_at",
        "retired_by",
    }


def test_staff_read_approvals_on_the_audit_page(bob, sam_client, image) -> None:
    services.submission_decide(reviewer=bob, submission=SubmissionFactory(image=image), approve=True, comment="Crisp")
    page = sam_client.get(reverse("ops-audit"), {"model": "submission"})
    [decision, *_] = page.context["rows"]
    assert decision.model is Submission and str(decision.record.history_user) == "bob"
    assert ("Status", "pending", "approved") in {(c["field"], c["old"], c["new"]) for c in decision.changes}
    assert Submission in ops.audited_models()
