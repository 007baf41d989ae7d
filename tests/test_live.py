"""The live channel: one request a second per page, whatever the number of running panels on it."""

import base64
import io
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from generation.jobs import submit
from generation.models import Favorite, GenerationJob, ImageModel, JobStatus
from generation.worker.progress import save_previews
from tests.factories import GenerationJobFactory, leased
from tests.test_views import image_for
from tests.test_workflow import finished_job

pytestmark = pytest.mark.django_db

LIVE = reverse("live")


def running(owner, n: int = 1, **fields) -> list[GenerationJob]:
    values = {"status": JobStatus.PROCESSING, "progress_step": 3, "progress_steps": 10} | fields
    return [GenerationJobFactory(owner=owner, prompt=f"running {i}", **values) for i in range(n)]


def ask(client, jobs: list[GenerationJob], *, kind: str = "job", stamp: str | None = None):
    """What the page's script sends: each panel's id and the stamp it shows."""
    data = {kind: [f"{job.pk}:{job.live_stamp if stamp is None else stamp}" for job in jobs]}
    return client.post(LIVE, data, HTTP_HX_REQUEST="true")


def oob_panels(body: str) -> list[str]:
    return re.findall(r'id="(?:job|item)-([0-9a-f-]{36})" hx-swap-oob="true"', body)


def test_one_request_returns_every_running_panel_that_changed(alice_client, alice) -> None:
    jobs = running(alice, 3)
    response = ask(alice_client, jobs, stamp="queued.0.0./0.0.")  # they started
    assert response.status_code == 200
    assert sorted(oob_panels(response.content.decode())) == sorted(str(job.pk) for job in jobs)
    assert "Step 3 of 10" in response.content.decode()


def progress_parts(body: str) -> list[str]:
    return re.findall(r'id="job-([0-9a-f-]{36})-(?:progress|previews)" hx-swap-oob="true"', body)


def test_only_the_panels_that_moved_come_back(alice_client, alice) -> None:
    still, moved, ended = running(alice, 3)
    data = {"job": [f"{job.pk}:{job.live_stamp}" for job in (still, moved, ended)]}
    GenerationJob.objects.filter(pk=moved.pk).update(progress_step=4)
    GenerationJob.objects.filter(pk=ended.pk).update(status=JobStatus.FAILED, error="out of memory")
    body = alice_client.post(LIVE, data, HTTP_HX_REQUEST="true").content.decode()
    assert oob_panels(body) == [str(ended.pk)] and "out of memory" in body
    assert progress_parts(body) == [str(moved.pk)] * 2 and "Step 4 of 10" in body


def test_a_step_brings_only_the_bar_and_the_previews_with_the_new_stamp(
    alice_client, alice, django_assert_max_num_queries
) -> None:
    job = running(alice, images_total=2)[0]
    stamp = job.live_stamp
    save_previews(leased(job), 0, 5, [webp_preview("red"), webp_preview("blue")])
    GenerationJob.objects.filter(pk=job.pk).update(progress_step=5)
    with django_assert_max_num_queries(4):  # session, user, the jobs, their previews
        response = ask(alice_client, [job], stamp=stamp)
    body = response.content.decode()
    assert response.status_code == 200 and not oob_panels(body) and job.prompt not in body
    assert "Step 5 of 10" in body and body.count("data:image/webp;base64,") == 2
    job.refresh_from_db()
    assert f'data-live-job="{job.pk}:{job.live_stamp}"' in body  # the page asks from the new stamp on


def test_nothing_changed_is_an_empty_204(alice_client, alice) -> None:
    response = ask(alice_client, running(alice, 2))
    assert response.status_code == 204 and response.content == b""


def test_when_nothing_runs_any_more_the_final_panels_come_with_the_stop_code(alice_client, alice) -> None:
    job = running(alice)[0]
    stamp = job.live_stamp
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETE)
    response = ask(alice_client, [job], stamp=stamp)
    body = response.content.decode()
    assert response.status_code == 286 and oob_panels(body) == [str(job.pk)]
    assert "data-live-job" not in body  # the ended panel leaves the channel


def test_a_page_with_nothing_running_is_told_to_stop(alice_client, alice) -> None:
    assert ask(alice_client, [finished_job(alice)]).status_code == 286
    assert alice_client.post(LIVE, {}, HTTP_HX_REQUEST="true").status_code == 286


def test_another_users_ids_are_ignored(alice_client, alice, bob) -> None:
    theirs = GenerationJobFactory(owner=bob, prompt="bob's secret", status=JobStatus.PROCESSING)
    response = ask(alice_client, [theirs], stamp="old")
    assert response.status_code == 286 and str(theirs.pk) not in response.content.decode()
    mine = running(alice)[0]
    response = alice_client.post(LIVE, {"job": [f"{theirs.pk}:old", f"{mine.pk}:old"]}, HTTP_HX_REQUEST="true")
    assert oob_panels(response.content.decode()) == [str(mine.pk)]
    assert str(theirs.pk) not in response.content.decode() and theirs.prompt not in response.content.decode()


def test_a_malformed_id_is_a_400_with_a_message(alice_client) -> None:
    response = alice_client.post(LIVE, {"job": ["not-a-uuid:1"]}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert response.json() == {"message": "A panel id the page sent is not a job id; reload the page.", "field": "job"}


def test_too_many_panels_is_a_400(alice_client) -> None:
    response = alice_client.post(LIVE, {"job": [f"{uuid.uuid4()}:x" for _ in range(201)]}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "At most 200" in response.json()["message"]


def test_it_takes_a_post_with_the_csrf_token(alice) -> None:
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.post(LIVE, {}, HTTP_HX_REQUEST="true").status_code == 403
    assert browser.get(LIVE).status_code == 405


def queries_for(client, jobs: list[GenerationJob], **kwargs) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = ask(client, jobs, stamp="old", **kwargs)
    assert response.status_code == 200 and len(oob_panels(response.content.decode())) >= len(jobs)
    return len(queries)


def test_the_queries_of_an_update_are_few_and_do_not_grow_with_the_panels(
    alice_client, alice, django_assert_max_num_queries
) -> None:
    one = running(alice, 1, images_done=1)
    ten = running(alice, 10, images_done=1)
    for job in one + ten:  # a stored image, starred, and a preview: everything a panel reads
        image = image_for(job)
        Favorite.objects.create(user=alice, image=image)
        save_previews(leased(job), 1, 3, [webp_preview("red")])
    # session, user, what moved, the rows of those jobs, their images, their previews, the stars on them
    with django_assert_max_num_queries(7):
        ask(alice_client, one, stamp="old")
    assert queries_for(alice_client, one) == queries_for(alice_client, ten)


def test_unchanged_panels_cost_one_query_beyond_the_session(alice_client, alice, django_assert_max_num_queries) -> None:
    jobs = running(alice, 10)
    with django_assert_max_num_queries(3):  # session, user, the jobs
        assert ask(alice_client, jobs).status_code == 204


def test_group_items_come_back_with_the_groups_header_and_their_numbers(alice_client, alice, preset) -> None:
    group = submit.group_batch(
        owner=alice,
        preset=preset,
        model=ImageModel.objects.get(key="tiny-flux"),
        prompts=["a cat", "a dog", "a fox"],
        quality="standard",
        variations=1,
        width=64,
        height=64,
    )
    jobs = list(group.jobs.order_by("created_at"))
    GenerationJob.objects.filter(pk=jobs[0].pk).update(status=JobStatus.COMPLETE)
    GenerationJob.objects.filter(pk=jobs[2].pk).update(status=JobStatus.PROCESSING, progress_step=1, progress_steps=4)
    with CaptureQueriesContext(connection) as queries:
        response = ask(alice_client, jobs, kind="item", stamp="old")
    body = response.content.decode()
    assert response.status_code == 200 and len(queries) <= 8
    assert sorted(oob_panels(body)) == sorted(str(job.pk) for job in jobs)
    assert 'id="group-head" hx-swap-oob="true"' in body and "1 of 3 done" in body
    assert "3. a fox" in body and "1. a cat" in body


def test_a_panel_that_starts_running_brings_the_live_channel_with_it(alice_client, preset) -> None:
    data = {"preset": "test-icon", "prompt": "a gear", "quality": "standard", "variations": "2"}
    body = alice_client.post(reverse("studio"), data, HTTP_HX_REQUEST="true").content.decode()
    job = GenerationJob.objects.get()
    assert f'data-live-job="{job.pk}:{job.live_stamp}"' in body
    channel = re.search(r'<div id="live"[^>]*>', body)
    assert channel and 'hx-swap-oob="true"' in channel[0] and 'hx-trigger="every 1s"' in channel[0]
    assert f'hx-post="{LIVE}"' in channel[0]


@pytest.mark.parametrize("page", ["studio", "job", "group"])
def test_a_page_polls_through_one_channel_however_many_jobs_run(alice_client, alice, preset, page) -> None:
    group = submit.group_batch(
        owner=alice,
        preset=preset,
        model=ImageModel.objects.get(key="tiny-flux"),
        prompts=["a cat", "a dog", "a fox"],
        quality="standard",
        variations=1,
        width=64,
        height=64,
    )
    jobs = list(group.jobs.all())
    url = {"studio": reverse("studio"), "job": jobs[0].get_absolute_url(), "group": group.get_absolute_url()}[page]
    body = alice_client.get(url).content.decode()
    assert body.count('hx-trigger="every 1s"') == 1 and 'id="live"' in body
    assert body.count("data-live-") == (1 if page == "job" else 3)


def test_a_page_with_nothing_running_does_not_poll(alice_client, alice) -> None:
    job = finished_job(alice)
    for url in (reverse("studio"), job.get_absolute_url()):
        body = alice_client.get(url).content.decode()
        assert 'id="live"' in body and "every 1s" not in body


def webp_preview(colour: str) -> Image.Image:
    return Image.new("RGB", (32, 32), colour)


def test_a_running_panel_shows_the_previews_of_the_images_not_stored_yet(alice_client, alice) -> None:
    job = running(alice, images_total=2, images_done=1)[0]
    save_previews(leased(job), 0, 3, [webp_preview("red"), webp_preview("blue")])
    body = ask(alice_client, [job], stamp="old").content.decode()
    uris = re.findall(r'src="data:image/webp;base64,([^"]+)"', body)
    assert len(uris) == 1 and "Variation 2 as it takes shape, step 3" in body  # image 1 is stored already
    assert Image.open(io.BytesIO(base64.b64decode(uris[0]))).getpixel((16, 16))[2] > 200  # the blue one
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETE, images_done=2)
    assert "data:image/webp" not in ask(alice_client, [job], stamp="old").content.decode()
