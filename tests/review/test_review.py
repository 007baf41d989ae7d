"""Review and approval on the pages: Alice submits, Bob reviews, Charlie sees nothing of it;
nobody reviews their own; a decided, retired or unlicensed submission takes no approval."""

import pytest
from django.urls import reverse

from generation.models import ReviewStatus, Submission
from generation.review import services
from tests.factories import GeneratedImageFactory, SubmissionFactory
from tests.review.conftest import unlicensed

pytestmark = pytest.mark.django_db


def submit(client, *images, note="For onboarding", tags="Onboarding, Q3  campaign"):
    return client.post(reverse("review-submit"), {"id": [str(i.pk) for i in images], "note": note, "tags": tags})


def decide(client, submission, decision="approve", comment="Good to go", **headers):
    return client.post(
        reverse("submission-decide", args=[submission.pk]), {"decision": decision, "comment": comment}, **headers
    )


def test_alice_submits_bob_approves_and_charlie_sees_nothing_but_the_library_item(
    alice_client, bob_client, charlie_client, image, bob
) -> None:
    second = GeneratedImageFactory(job=image.job, index=1)
    form = alice_client.get(reverse("review-submit"), {"id": [image.pk, second.pk]})
    assert form.status_code == 200 and "Submit 2 for review" in form.content.decode()
    response = submit(alice_client, image, second)
    assert response.status_code == 302 and response.url == reverse("my-submissions")
    first = Submission.objects.get(image=image)
    assert Submission.objects.count() == 2
    assert [t.name for t in first.tags.all()] == ["onboarding", "q3 campaign"] and first.note == "For onboarding"

    queue = bob_client.get(reverse("review-queue")).content.decode()
    assert "a rocket over the city" in queue and "alice" in queue
    page = bob_client.get(first.get_absolute_url()).content.decode()
    assert "Approve" in page and "Prompt sent to the model" in page  # the image page's lineage
    assert bob_client.get(reverse("submission-file", args=[first.pk])).status_code == 200
    assert decide(bob_client, first).status_code == 302
    first.refresh_from_db()
    assert (first.status, first.reviewer, first.comment) == (ReviewStatus.APPROVED, bob, "Good to go")

    for url in (first.get_absolute_url(), reverse("submission-file", args=[first.pk])):
        assert charlie_client.get(url).status_code == 404
    assert decide(charlie_client, Submission.objects.get(image=second)).status_code == 404
    assert "a rocket" not in charlie_client.get(reverse("my-submissions")).content.decode()
    assert charlie_client.get(reverse("review-queue")).status_code == 403
    library = charlie_client.get(reverse("library")).content.decode()
    assert reverse("library-item", args=[first.pk]) in library
    assert reverse("library-item", args=[Submission.objects.get(image=second).pk]) not in library  # still pending
    assert charlie_client.get(reverse("library-item", args=[first.pk])).status_code == 200


def test_alice_sees_the_outcome_on_her_image_and_in_my_submissions(alice_client, bob, image) -> None:
    submission = SubmissionFactory(image=image)
    services.submission_decide(reviewer=bob, submission=submission, approve=False, comment="Thinner strokes, please")
    page = alice_client.get(image.get_absolute_url()).content.decode()
    assert "Changes requested" in page and "Thinner strokes, please" in page
    assert "Submit for review" in page  # a resubmission is a new one
    mine = alice_client.get(reverse("my-submissions")).content.decode()
    assert "Changes requested" in mine and "Thinner strokes, please" in mine


def test_a_resubmission_after_changes_requested_is_a_new_submission(alice, bob, image) -> None:
    first = SubmissionFactory(image=image)
    services.submission_decide(reviewer=bob, submission=first, approve=False, comment="Bolder")
    [again] = services.submission_create(user=alice, images=[image], note="Bolder now", tags=[])
    assert again.pk != first.pk and again.status == ReviewStatus.PENDING
    assert Submission.objects.get(pk=first.pk).status == ReviewStatus.CHANGES_REQUESTED


def test_submitting_someone_elses_image_is_a_404_and_makes_nothing(charlie_client, image) -> None:
    assert charlie_client.get(reverse("review-submit"), {"id": image.pk}).status_code == 404
    assert submit(charlie_client, image).status_code == 404
    assert not Submission.objects.exists()


def test_an_image_waiting_for_review_or_in_the_library_cannot_be_submitted_again(
    alice_client, alice, bob, image
) -> None:
    submission = SubmissionFactory(image=image)
    response = submit(alice_client, image)
    assert response.status_code == 409 and "already waiting for review" in response.content.decode()
    services.submission_decide(reviewer=bob, submission=submission, approve=True, comment="")
    response = submit(alice_client, image)
    assert response.status_code == 409 and "in the Brand Library" in response.content.decode()
    assert Submission.objects.count() == 1


def test_bad_tags_are_a_422_and_make_nothing(alice_client, image) -> None:
    response = submit(alice_client, image, tags="x" * 41)
    assert response.status_code == 422 and "under 40 characters" in response.content.decode()
    response = submit(alice_client, image, tags=",".join(f"t{n}" for n in range(11)))
    assert response.status_code == 422 and not Submission.objects.exists()


def test_nobody_reviews_their_own_submission_not_even_staff(sam, image) -> None:
    own = SubmissionFactory(image=GeneratedImageFactory(job__owner=sam))
    with pytest.raises(services.ReviewRefused) as refused:
        services.submission_decide(reviewer=sam, submission=own, approve=True, comment="")
    assert refused.value.status == 403 and "their own" in str(refused.value)
    assert Submission.objects.get(pk=own.pk).status == ReviewStatus.PENDING


def test_a_reviewer_deciding_their_own_submission_on_the_page_gets_a_403_with_the_reason(bob, bob_client) -> None:
    own = SubmissionFactory(image=GeneratedImageFactory(job__owner=bob))
    assert own.pk not in {s.pk for s in bob_client.get(reverse("review-queue")).context["page"]}
    page = bob_client.get(own.get_absolute_url()).content.decode()
    assert "nobody reviews their own submission" in page and "Approve</button>" not in page
    response = decide(bob_client, own)
    assert response.status_code == 403 and "Nobody reviews their own submission" in response.content.decode()
    assert Submission.objects.get(pk=own.pk).status == ReviewStatus.PENDING


def test_a_decided_submission_takes_no_second_decision(bob_client, bob, sam, image) -> None:
    submission = SubmissionFactory(image=image)
    services.submission_decide(reviewer=bob, submission=submission, approve=False, comment="Bolder")
    response = decide(bob_client, submission, HTTP_HX_REQUEST="true")
    assert response.status_code == 409 and "decided already: changes requested by bob" in response.content.decode()
    assert Submission.objects.get(pk=submission.pk).status == ReviewStatus.CHANGES_REQUESTED


def test_a_retired_item_takes_no_decision(bob, sam, image) -> None:
    item = SubmissionFactory(image=image)
    services.submission_decide(reviewer=bob, submission=item, approve=True, comment="")
    services.library_retire(user=sam, item=item)
    with pytest.raises(services.ReviewRefused) as refused:
        services.submission_decide(
            reviewer=sam, submission=Submission.objects.get(pk=item.pk), approve=False, comment="x"
        )
    assert refused.value.status == 409 and "retired" in str(refused.value)


def test_an_image_from_a_model_not_licensed_for_production_is_never_approved_and_the_page_says_why(
    bob_client, image
) -> None:
    submission = SubmissionFactory(image=unlicensed(image))
    page = bob_client.get(submission.get_absolute_url()).content.decode()
    assert "not licensed for production" in page and "Research only: not for products." in page
    assert '<button class="primary" name="decision" value="approve" disabled>' in page
    response = decide(bob_client, submission)
    assert response.status_code == 409 and "Research only" in response.content.decode()
    assert Submission.objects.get(pk=submission.pk).status == ReviewStatus.PENDING
    assert decide(bob_client, submission, "changes", "Redo it with a production model").status_code == 302


def test_requesting_changes_needs_a_comment(bob_client, image) -> None:
    submission = SubmissionFactory(image=image)
    response = decide(bob_client, submission, "changes", "  ")
    assert response.status_code == 422 and "Say what should change" in response.content.decode()
    assert Submission.objects.get(pk=submission.pk).status == ReviewStatus.PENDING


def test_a_decision_by_htmx_swaps_the_decision_box(bob_client, image) -> None:
    submission = SubmissionFactory(image=image)
    response = decide(bob_client, submission, HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert response.status_code == 200 and text.lstrip().startswith('<div id="decision"') and "Approved" in text


def test_only_reviewers_see_the_review_link(bob_client, charlie_client, sam_client) -> None:
    link = f'href="{reverse("review-queue")}"'
    assert link in bob_client.get(reverse("studio")).content.decode()
    assert link in sam_client.get(reverse("studio")).content.decode()
    assert link not in charlie_client.get(reverse("studio")).content.decode()


def test_the_selection_bar_offers_submit_for_review_and_favorites_can_be_ticked(alice_client, alice, image) -> None:
    from generation.models import Favorite

    Favorite.objects.create(user=alice, image=image)
    page = alice_client.get(reverse("favorites")).content.decode()
    assert f'formaction="{reverse("review-submit")}"' in page
    assert f'name="id" value="{image.pk}" form="selection"' in page
