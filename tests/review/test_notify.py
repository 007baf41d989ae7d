"""A decision tells the designer: an email through Django's email backend, and a message to a
Teams or Slack incoming webhook where one is set, sent from a task after commit. A failure is
logged and never undoes the decision."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail

from generation import tasks
from generation.jobs import lifecycle
from generation.models import ReviewStatus, Submission
from generation.review import notify, services
from tests.factories import GeneratedImageFactory, SubmissionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel():
    """A local incoming webhook: what it was sent, and the status it answers with."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        status = 200

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append({"type": self.headers["Content-Type"], "body": json.loads(self.rfile.read(length))})
            self.send_response(Hook.status)
            self.end_headers()
            self.wfile.write(b"1")

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received, Hook
    server.shutdown()
    server.server_close()


@pytest.fixture
def decided(bob, image) -> Submission:
    submission = SubmissionFactory(image=image)
    return services.submission_decide(reviewer=bob, submission=submission, approve=False, comment="Bolder, please")


def test_a_decision_sends_its_notification_task_once_committed(
    bob, image, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(lifecycle, "send_task", lambda name, *args, **options: sent.append((name, *args)))
    submission = SubmissionFactory(image=image)
    with django_capture_on_commit_callbacks(execute=True):
        services.submission_decide(reviewer=bob, submission=submission, approve=True, comment="")
        assert sent == []  # not before the commit
    assert sent == [("generation.tasks.notify_review_decision", str(submission.pk))]


def test_an_unreachable_broker_loses_the_notification_not_the_decision(
    bob, image, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(lifecycle, "send_task", down)
    submission = SubmissionFactory(image=image)
    with django_capture_on_commit_callbacks(execute=True):
        services.submission_decide(reviewer=bob, submission=submission, approve=True, comment="")
    assert Submission.objects.get(pk=submission.pk).status == ReviewStatus.APPROVED
    assert "Could not enqueue the notification" in caplog.text


def test_the_designer_is_emailed_the_decision_with_a_link(decided, settings) -> None:
    settings.STUDIO_PUBLIC_URL = "https://studio.example.com"
    tasks.notify_review_decision(str(decided.pk))
    [email] = mail.outbox
    assert email.to == ["alice@example.com"] and email.subject.startswith("Changes requested: a rocket")
    assert "“Bolder, please”" in email.body and "says bob" in email.body
    assert f"https://studio.example.com/review/{decided.pk}/" in email.body


def test_a_designer_without_an_email_address_gets_none(decided, alice) -> None:
    alice.email = ""
    alice.save()
    notify.notify_decision(decided.pk)
    assert mail.outbox == []


def test_the_webhook_gets_a_message_teams_and_slack_both_read(decided, settings, channel) -> None:
    url, received, _ = channel
    settings.STUDIO_REVIEW_WEBHOOK_URL = url
    notify.notify_decision(decided.pk)
    [message] = received
    assert message["type"] == "application/json"
    assert set(message["body"]) == {"text"} and "needs changes" in message["body"]["text"]


def test_a_failing_webhook_is_logged_and_the_email_still_goes(decided, settings, channel, caplog) -> None:
    url, received, hook = channel
    hook.status = 500
    settings.STUDIO_REVIEW_WEBHOOK_URL = url
    notify.notify_decision(decided.pk)
    assert len(received) == 1 and len(mail.outbox) == 1
    assert "The review webhook did not take the message" in caplog.text
    assert Submission.objects.get(pk=decided.pk).status == ReviewStatus.CHANGES_REQUESTED


def test_a_webhook_nobody_answers_is_logged_within_its_timeout(decided, settings, caplog, monkeypatch) -> None:
    monkeypatch.setattr(notify, "WEBHOOK_TIMEOUT", 1)
    settings.STUDIO_REVIEW_WEBHOOK_URL = "http://127.0.0.1:9/hook"  # the discard port: refused
    assert notify.post_webhook(settings.STUDIO_REVIEW_WEBHOOK_URL, "x") is False
    assert notify.post_webhook("file:///etc/passwd", "x") is False
    assert "not an http(s) URL" in caplog.text


def test_a_pending_submission_notifies_nobody(image, settings, channel) -> None:
    url, received, _ = channel
    settings.STUDIO_REVIEW_WEBHOOK_URL = url
    notify.notify_decision(SubmissionFactory(image=image).pk)
    assert received == [] and mail.outbox == []


@pytest.fixture
def submitted(alice, image) -> list[Submission]:
    second = GeneratedImageFactory(job=image.job, index=1, seed=image.seed + 1)
    return services.submission_create(user=alice, images=[image, second], note="For the Q3 deck", tags=["onboarding"])


def test_a_submission_sends_its_notification_task_once_committed(
    alice, image, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(lifecycle, "send_task", lambda name, *args, **options: sent.append((name, *args)))
    with django_capture_on_commit_callbacks(execute=True):
        [made] = services.submission_create(user=alice, images=[image], note="", tags=[])
        assert sent == []  # not before the commit
    assert sent == [("generation.tasks.notify_review_submitted", [str(made.pk)])]


def test_reviewers_but_not_the_designer_or_other_designers_are_emailed_one_message_per_submit(
    submitted, bob, alice, charlie, settings
) -> None:
    settings.STUDIO_PUBLIC_URL = "https://studio.example.com"
    alice.is_staff = True  # staff review too, but never their own submission
    alice.save()
    UserFactory(username="dana", email="dana@example.com", is_staff=True)
    UserFactory(username="gone", email="gone@example.com", is_staff=True, is_active=False)
    tasks.notify_review_submitted([str(s.pk) for s in submitted])
    assert sorted(address for email in mail.outbox for address in email.to) == ["bob@example.com", "dana@example.com"]
    email = mail.outbox[0]
    assert email.subject == "For review: 2 images from alice"
    assert "alice submitted 2 images for review:" in email.body and "“a rocket over the city”" in email.body
    assert "Note: “For the Q3 deck”" in email.body and "https://studio.example.com/review/" in email.body


def test_the_channel_hears_of_a_submission_and_one_decided_meanwhile_is_left_out(
    submitted, bob, settings, channel
) -> None:
    url, received, _ = channel
    settings.STUDIO_REVIEW_WEBHOOK_URL = url
    services.submission_decide(reviewer=bob, submission=submitted[0], approve=True, comment="")
    notify.notify_submitted([str(s.pk) for s in submitted])
    [message] = received
    assert "alice submitted 1 image for review:" in message["body"]["text"]
    mail.outbox.clear()
    for submission in submitted[1:]:
        services.submission_decide(reviewer=bob, submission=submission, approve=True, comment="")
    notify.notify_submitted([str(s.pk) for s in submitted])
    assert len(received) == 1 and mail.outbox == []


def test_a_large_submit_names_five_images_and_counts_the_rest(alice, image) -> None:
    images = [image] + [GeneratedImageFactory(job=image.job, index=n, seed=image.seed + n) for n in range(1, 8)]
    made = services.submission_create(user=alice, images=images, note="", tags=[])
    text = notify.submitted_text(made)
    assert text.count("- “a rocket") == 5 and "- and 3 more" in text and "Note:" not in text
