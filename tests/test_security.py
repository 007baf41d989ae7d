"""Security walks: every URL that takes someone's id answers another user 404; the health check."""

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from generation.models import ApiToken, Favorite, InputImage, JobGroup, Submission, TrainingRun, TrainingSet
from generation.tokens import token_create
from tests.factories import UserFactory
from tests.test_workflow import finished_job

pytestmark = pytest.mark.django_db

# Staff-only pages: a designer is sent to the admin sign-in, whatever the id.
STAFF_ONLY = {
    "training-set",
    "training-captions",
    "training-image",
    "training-run",
    "training-run-action",
    "lora-action",
    "ops-cancel",
    "library-retire",
}


def patterns_with_ids(resolver: URLResolver | None = None, prefix: str = "") -> list[tuple[str, str]]:
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            found += patterns_with_ids(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and "<" in str(entry.pattern):
            found.append((entry.name or "", prefix + str(entry.pattern)))
    return found


@pytest.fixture
def alices_things(alice, preset):
    job = finished_job(alice)
    image = job.images.first()
    Favorite.objects.create(user=alice, image=image)
    group = JobGroup.objects.create(owner=alice, kind="batch", title="x")
    training_set = TrainingSet.objects.create(name="s", preset=preset, family="flux", created_by=alice)
    run = TrainingRun.objects.create(training_set=training_set, model_key="tiny-flux", params={"steps": 1})
    token = token_create(user=alice, name="t")[0]
    sketch = InputImage.objects.create(owner=alice, sha256="1" * 64, file="inputs/s.png", width=8, height=8)
    submission = Submission.objects.create(image=image, submitted_by=alice)  # waiting: not in the library
    return {
        "job": job,
        "image": image,
        "group": group,
        "set": training_set,
        "run": run,
        "token": token,
        "input": sketch,
        "submission": submission,
    }


def url_for(name: str, pattern: str, things: dict) -> str | None:
    """The URL of one of alice's things for every pattern that takes an id (None: no id of hers)."""
    ids = {
        "job": str(things["job"].pk),
        "image": str(things["image"].pk),
        "group": str(things["group"].pk),
        "training": things["set"].pk,
        "input": str(things["input"].pk),
        "submission": str(things["submission"].pk),
    }
    if pattern.startswith("api/v1/"):
        path = "/" + pattern.replace("<job_id>", ids["job"]).replace("<image_id>", ids["image"]).replace("<index>", "0")
        path = path.replace("<input_id>", ids["input"])
        path = path.replace("<submission_id>", ids["submission"]).replace("<item_id>", ids["submission"])
        return None if "<" in path else path
    if name.startswith("job"):
        return reverse(name, args=[ids["job"]])
    if name.startswith("image") and name not in ("images-zip", "image-restore"):
        return reverse(name, args=[ids["image"]])
    if name.startswith("group"):
        return reverse(name, args=[ids["group"]])
    if name in ("training-set", "training-captions"):
        return reverse(name, args=[ids["training"]])
    if name == "training-image":
        return reverse(name, args=[1])
    if name in ("training-run", "training-run-action"):
        args = [things["run"].pk] + (["cancel"] if name.endswith("action") else [])
        return reverse(name, args=args)
    if name == "lora-action":
        return reverse(name, args=[1, "publish"])
    if name in ("input-file", "input-prepared", "input-depth"):
        return reverse(name, args=[ids["input"]])
    if name == "ops-cancel":
        return reverse(name, args=[ids["job"]])
    if name.startswith(("submission", "library")):
        return reverse(name, args=[ids["submission"]])
    if name == "training-file":
        return reverse(name, args=[things["image"].file.name])
    return None


# An asset type's brand references are the brand's own: every signed-in designer sees them.
SHARED = {"brand-reference-file", "brand_reference_file"}


def test_every_url_with_someone_elses_id_is_a_404_for_another_user(alices_things, bob_client, bob) -> None:
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=bob, name='b')[1]}")
    checked = []
    for name, pattern in patterns_with_ids():
        if pattern.startswith(("admin/", "oauth/", "static/")) or name in ("", None) or name in SHARED:
            continue
        url = url_for(name, pattern, alices_things)
        assert url is not None, f"no test id for {name} ({pattern}): add it to url_for"
        client = api if url.startswith("/api/") else bob_client
        for method in ("get", "post", "delete"):
            body = {"data": {}, "content_type": "application/json"} if url.startswith("/api/") else {}
            status = getattr(client, method)(url, **body).status_code
            if name in STAFF_ONLY or name == "training-file":
                assert status in (302, 404, 405), (name, method, status)
            else:
                assert status in (404, 405), (name, url, method, status)
        checked.append(name)
    assert len(checked) >= 20
    # And nothing of alice's changed.
    alices_things["job"].refresh_from_db()
    assert alices_things["job"].status == "complete" and Favorite.objects.count() == 1
    assert Submission.objects.get().status == "pending"


def test_another_users_token_cannot_be_revoked(alices_things, bob_client) -> None:
    bob_client.post(reverse("profile"), {"revoke": alices_things["token"].pk})
    assert ApiToken.objects.get(pk=alices_things["token"].pk).revoked_at is None


def test_the_health_check_says_what_answers(client) -> None:
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True, "broker": True, "storage": True}


def test_the_health_check_fails_loudly_without_the_broker(client, monkeypatch) -> None:
    from kombu import Connection

    from generation import ops

    monkeypatch.setattr(ops.app, "connection_for_read", lambda: Connection("redis://127.0.0.1:1/0"))
    response = client.get("/health/")
    assert response.status_code == 503 and response.json()["broker"] is False


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "brandstudio.settings",
    "SECRET_KEY": "x" * 60 + "-production-like-secret-key-for-the-check",
    "ALLOWED_HOSTS": "studio.example.com",
    "BEHIND_TLS_PROXY": "1",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
    "ENTRA_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
    "ENTRA_TENANT_ID": "00000000-0000-0000-0000-000000000002",
}


def manage(*args: str, **env: str):
    import subprocess
    import sys

    from tests.processes import ROOT, base_env

    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base_env(**env), capture_output=True, text=True, timeout=120
    )


def test_the_deploy_check_reports_nothing_with_production_settings() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_local_passwords_cannot_be_switched_on_next_to_entra_in_production_by_accident() -> None:
    result = manage("check", **PRODUCTION, LOCAL_LOGIN="1")
    assert result.returncode != 0 and "LOCAL_LOGIN_BREAK_GLASS" in result.stderr
    assert manage("check", **PRODUCTION, LOCAL_LOGIN="1", LOCAL_LOGIN_BREAK_GLASS="1").returncode == 0


def test_pages_carry_a_content_security_policy_without_inline_code(alice_client) -> None:
    policy = alice_client.get(reverse("studio"))["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy


def test_htmx_posts_need_the_csrf_token_the_page_sends_in_a_header(alice) -> None:
    from django.test import Client

    from tests.factories import PASSWORD

    job = finished_job(alice)
    browser = Client(enforce_csrf_checks=True)
    browser.login(username="alice", password=PASSWORD)
    page = browser.get(reverse("job", args=[job.id])).content.decode()
    token = page.split('"X-CSRFToken": "')[1].split('"')[0]  # hx-headers on <body>
    url = reverse("job-more", args=[job.id])
    assert browser.post(url, HTTP_HX_REQUEST="true").status_code == 403
    assert browser.post(url, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token).status_code == 200


def test_brand_references_are_served_to_signed_in_designers_only(preset) -> None:
    from tests.control.test_references import brand_reference

    reference = brand_reference(preset)
    assert Client().get(reverse("brand-reference-file", args=[reference.pk])).status_code == 302  # to sign in
    assert Client().get(f"/api/v1/brand-references/{reference.pk}/file").status_code == 401


class TestHealthWorkers:
    """/health/?workers=1 names the workers: staff or the health token only, asked at most every few seconds."""

    @pytest.fixture(autouse=True)
    def counted(self, monkeypatch, settings):
        from django.core.cache import cache

        from generation import ops

        cache.clear()
        settings.STUDIO_HEALTH_TOKEN = "monitoring-token"
        asked: list[float] = []
        monkeypatch.setattr(ops, "workers", lambda timeout: asked.append(timeout) or [ops.WorkerInfo("gpu@a", [])])
        return asked

    def test_anyone_else_is_refused_without_asking_the_workers(self, client, alice_client, counted) -> None:
        for asker in (client, alice_client):
            response = asker.get("/health/?workers=1")
            assert response.status_code == 403 and "health token" in response.json()["error"]
        assert client.get("/health/", HTTP_AUTHORIZATION="Bearer wrong").status_code == 200  # the plain check
        assert client.get("/health/?workers=1", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
        assert counted == []

    def test_staff_and_the_token_get_the_names_from_one_ask_every_few_seconds(self, client, counted) -> None:
        staff_client = Client()
        staff_client.force_login(UserFactory(is_staff=True))
        assert staff_client.get("/health/?workers=1").json()["workers"] == ["gpu@a"]
        by_token = client.get("/health/?workers=1", HTTP_AUTHORIZATION="Bearer monitoring-token")
        assert by_token.status_code == 200 and by_token.json()["workers"] == ["gpu@a"]
        assert counted == [1.0]
