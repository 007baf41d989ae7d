"""The pages in a real headless Chromium, against the live Django server and a real Celery
worker on Redis + Postgres: what a designer clicks, with no JavaScript errors.

Playwright drives Debian's `chromium` (its own browser download does not work here);
`.ci/run` installs it. Without a Chromium these tests are skipped, saying so.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connections
from PIL import Image

from generation.models import GenerationJob, InputImage, JobStatus
from tests.factories import PASSWORD, AssetPresetFactory, UserFactory
from tests.processes import worker, worker_env
from tests.test_workflow import finished_job

CHROMIUM = os.environ.get("STUDIO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM and os.environ.get("STUDIO_REQUIRE_BROWSER"):
    raise RuntimeError("STUDIO_REQUIRE_BROWSER is set but no chromium is installed")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.txt")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM, reason="no Chromium: install Debian's chromium package (.ci/run does)"),
]

LAPTOP = {"width": 1366, "height": 800}
TABLET = {"width": 820, "height": 1180}


@pytest.fixture
def browser(transactional_db, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    # Playwright's sync API runs an event loop in this thread. Django then keeps database
    # connections per async context, so the browser starts after the test database is set
    # up (a module-wide browser would hide the seeded rows from later tests), and the
    # connections opened meanwhile are closed before it stops. The ORM calls of the test
    # are still plain synchronous code, so Django's async guard is lifted.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            yield browser
        finally:
            connections.close_all()
            browser.close()


class Page:
    """A signed-in browser tab that records every JavaScript error and failed request."""

    def __init__(self, browser, base_url: str, username: str, viewport: dict[str, int] = LAPTOP) -> None:
        self.context = browser.new_context(base_url=base_url, viewport=viewport, accept_downloads=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))
        self.page.goto("/accounts/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/")

    def fits_width(self) -> bool:
        return bool(self.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


@pytest.fixture
def alice_tab(browser, live_server, alice) -> Iterator[Page]:
    tab = Page(browser, live_server.url, "alice")
    yield tab
    tab.context.close()


@pytest.fixture
def real_worker(tmp_path: Path) -> Iterator[object]:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    with worker(worker_env(tmp_path), tmp_path / "worker.log") as w:
        yield w


def test_a_designer_generates_varies_stars_filters_and_downloads(alice_tab: Page, real_worker) -> None:
    page = alice_tab.page
    preset = AssetPresetFactory(
        slug="browser-icon", name="Browser Icon", default_width=128, default_height=128, allowed_sizes=[[128, 128]]
    )
    preset.steps = 24  # long enough for the progress bar to be seen
    preset.save()
    page.goto("/")

    # Generate: the progress bar, then a grid of four.
    page.check(f"input[name=preset][value={preset.slug}]")
    page.fill("textarea[name=prompt]", "a paper plane")
    page.click("#generate-submit")
    page.wait_for_selector(".job progress, .job .progress-text", timeout=30_000)
    # Locator waits, not wait_for_function: the studio's CSP forbids the eval that needs.
    page.locator(".job-complete figure").nth(3).wait_for(timeout=60_000)
    job = GenerationJob.objects.get(prompt="a paper plane")
    assert job.status == JobStatus.COMPLETE and job.images.count() == 4

    # More like this: a new panel right after, saying what it varies, with its own grid.
    page.locator(f"#job-{job.id} figure").first.get_by_role("button", name="Subtle").click()
    page.wait_for_selector("text=More like this (subtle)")
    variations = GenerationJob.objects.get(source_image__isnull=False)
    page.locator(f"#job-{variations.id}.job-complete figure").nth(3).wait_for(timeout=60_000)
    assert variations.params["init_image"] and variations.variation["mode"] == "img2img"

    # Star: the button flips and the image is on the favorites page.
    star = page.locator(f"#job-{job.id} figure").first.locator("button.star")
    star.click()
    page.wait_for_selector(f"#job-{job.id} figure button.star.on")
    page.goto("/favorites/")
    assert page.locator(".grid figure").count() == 1

    # History filter: searching and filtering narrows the list.
    page.goto("/history/")
    assert page.locator(".job").count() == 2
    page.fill("input[name=q]", "nothing like this")
    page.click(".filters button[type=submit]")
    page.wait_for_selector("text=No jobs match")
    page.goto("/history/")
    page.check("input[name=starred]")
    page.click(".filters button[type=submit]")
    page.wait_for_url("**starred=1**")
    assert page.locator(".job").count() == 1

    # Zip download: a valid zip of valid images.
    with page.expect_download() as download:
        page.locator(f"#job-{job.id}").get_by_text("Download all as zip").click()
    archive = zipfile.ZipFile(download.value.path())
    assert len(archive.namelist()) == 4
    for name in archive.namelist():
        Image.open(io.BytesIO(archive.read(name))).verify()

    # A selection: ticking boxes shows the download bar.
    page.goto(f"/jobs/{job.id}/")
    assert not page.locator(".selection-bar").is_visible()
    boxes = page.locator("input[form=selection]")
    boxes.nth(0).check()
    boxes.nth(2).check()
    with page.expect_download() as download:
        page.locator(".selection-bar button", has_text="Download selected").click()
    assert len(zipfile.ZipFile(download.value.path()).namelist()) == 2
    assert alice_tab.errors == []


def test_a_comparison_across_asset_types_fills_its_columns(alice_tab: Page, real_worker) -> None:
    page = alice_tab.page
    first, second = AssetPresetFactory(name="Flat icon"), AssetPresetFactory(name="Line icon")
    page.goto("/compare/")
    page.fill("textarea[name=prompt]", "a lighthouse")
    for box in page.locator("input[name=presets]:checked").all():
        box.uncheck()
    page.check(f"input[name=presets][value={first.slug}]")
    page.check(f"input[name=presets][value={second.slug}]")
    page.click("#compare-form button[type=submit]")
    page.wait_for_load_state()
    page.wait_for_url("**/groups/**")
    page.locator(".group-item.job-complete").nth(1).wait_for(timeout=60_000)
    assert page.locator(".group-item h2").all_inner_texts() in (["Flat icon", "Line icon"], ["Line icon", "Flat icon"])
    assert page.locator(".group-item figure").count() == 4
    assert alice_tab.errors == []


def test_another_users_image_is_a_404_in_the_browser(alice_tab: Page, bob) -> None:
    theirs = finished_job(bob).images.first()
    response = alice_tab.page.goto(f"/images/{theirs.id}/")
    assert response.status == 404
    assert alice_tab.page.goto(f"/images/{theirs.id}/file/").status == 404


@pytest.mark.parametrize("viewport", [LAPTOP, TABLET], ids=["laptop", "tablet"])
def test_every_page_loads_without_errors_and_fits_the_width(browser, live_server, viewport) -> None:
    designer = UserFactory(username="dana", is_staff=True, is_superuser=True)
    job = finished_job(designer, "a compass", images=4)
    tab = Page(browser, live_server.url, designer.username, viewport)
    pages = ["/", "/compare/", "/batch/", "/history/", "/favorites/", "/ops/", f"/jobs/{job.id}/"]
    pages.append(f"/images/{job.images.first().id}/")
    try:
        for path in pages:
            response = tab.page.goto(path)
            assert response.status == 200, path
            assert tab.fits_width(), f"{path} scrolls sideways at {viewport['width']} px"
    finally:
        tab.context.close()
    assert tab.errors == []


PLUGIN_UI = Path(__file__).resolve().parent.parent / "figma-plugin" / "dist" / "ui.html"


@pytest.mark.skipif(not PLUGIN_UI.exists(), reason="build the plugin first: cd figma-plugin && npm ci && npm run build")
def test_the_figma_plugin_panel_generates_and_asks_to_place_an_image(browser, live_server, alice, preset, real_worker):
    """The plugin's built panel, its parent (Figma's main thread) replaced by a recorder: it
    talks to the studio from the null origin with a token, follows the job, shows the WebP
    thumbnails, and a click fetches the full PNG and sends its bytes to be placed."""
    from django.conf import settings

    from generation.control.addons import capabilities
    from generation.models import ImageModel
    from generation.tokens import token_create

    token = token_create(user=alice, name="figma")[1]
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(
        "window.__sent = []; window.parent = {postMessage: (m) => window.__sent.push(m.pluginMessage)};"
        "window.__fetched = []; const realFetch = window.fetch;"
        "window.fetch = (url, init) => { window.__fetched.push(String(url)); return realFetch(url, init); };"
    )
    page.goto(PLUGIN_UI.as_uri())
    page.wait_for_function("window.__sent.some(m => m.type === 'load-settings')")
    settings_message = {"type": "settings", "settings": {"server": live_server.url, "token": token}}
    page.evaluate("m => window.postMessage({pluginMessage: m}, '*')", settings_message)
    page.wait_for_selector("#main:not([hidden])")
    # It offers what the studio's default model can follow, as GET /models says.
    can = capabilities(ImageModel.objects.get(key=settings.STUDIO_DEFAULT_MODEL))
    modes = page.eval_on_selector_all("#sketch-mode option", "options => options.map(o => o.value)")
    expected = [m for m in ("drawing", "filled") if "sketch" in can]
    assert modes == expected + [m for m in ("canny", "tile", "depth") if f"control:{m}" in can]
    assert page.is_disabled("#as-reference") == ("references" not in can)
    page.select_option("#asset-type", preset.slug)
    page.fill("#description", "a flat blue circle")
    page.click("#generate")
    page.wait_for_selector("#results figure img", timeout=60_000)
    assert page.locator("#results figure").count() == 4
    page.wait_for_function("Array.from(document.querySelectorAll('#results img')).every(i => i.naturalWidth > 0)")
    fetched = page.evaluate("window.__fetched")
    assert sum(url.endswith("/thumbnail") for url in fetched) == 4 and not any("/file" in url for url in fetched)
    page.locator("#results figure img").first.click()
    page.wait_for_function("window.__sent.some(m => m.type === 'place')")
    assert sum("/file?format=png" in url for url in page.evaluate("window.__fetched")) == 1
    placed = page.evaluate(
        "(() => { const m = window.__sent.find(m => m.type === 'place'); return m && {description: m.description,"
        " width: m.width, size: m.bytes.length, head: Array.from(m.bytes.slice(0, 4))}; })()"
    )
    context.close()
    assert placed == {
        "description": "a flat blue circle",
        "width": 64,
        "size": placed["size"],
        "head": [137, 80, 78, 71],
    }
    assert errors == []


def test_two_running_jobs_cost_one_live_request_a_second_which_stops_when_they_end(alice_tab: Page, alice) -> None:
    from tests.factories import GenerationJobFactory

    page = alice_tab.page
    jobs = [
        GenerationJobFactory(owner=alice, prompt=f"running {n}", status=JobStatus.PROCESSING, progress_steps=10)
        for n in range(2)
    ]
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.url, r.post_data or "")))
    page.goto("/")
    page.wait_for_timeout(4_200)  # Playwright delivers its events while it waits, not in time.sleep
    live = [body for url, body in requests if url.endswith("/live/")]
    assert 3 <= len(live) <= 5, live  # one a second for the page, not one per job
    assert all(str(jobs[0].pk) in body and str(jobs[1].pk) in body for body in live)
    assert not [url for url, _ in requests if "/jobs/" in url]

    # A change reaches its panel through the channel; when both have ended, the channel stops.
    GenerationJob.objects.filter(pk=jobs[1].pk).update(progress_step=5)
    page.locator(f"#job-{jobs[1].pk}").get_by_text("Step 5 of 10").wait_for(timeout=5_000)
    page.wait_for_timeout(1_500)  # only the bar came back, and with it the stamp the page now asks from
    jobs[1].refresh_from_db()
    assert quote(f"{jobs[1].pk}:{jobs[1].live_stamp}", safe="") in requests[-1][1]
    GenerationJob.objects.filter(pk__in=[job.pk for job in jobs]).update(status=JobStatus.CANCELLED)
    page.locator(".job-cancelled").nth(1).wait_for(timeout=5_000)
    stopped = len([url for url, _ in requests if url.endswith("/live/")])
    page.wait_for_timeout(2_500)
    assert len([url for url, _ in requests if url.endswith("/live/")]) == stopped
    assert alice_tab.errors == []


def test_a_sketch_chosen_in_the_form_is_previewed_then_drawn_from(alice_tab: Page, tmp_path: Path) -> None:
    from tests.control.test_sketch import star_sketch

    AssetPresetFactory(slug="sketch-icon", name="Sketch Icon")
    (tmp_path / "star.png").write_bytes(star_sketch(centre=(0.5, 0.5)))
    page = alice_tab.page
    page.goto("/")
    page.check("input[name=preset][value=sketch-icon]")
    page.fill("textarea[name=prompt]", "a star")
    page.locator("#sketch-box summary").click()
    page.set_input_files("#sketch-box input[type=file]", str(tmp_path / "star.png"))
    preview = page.locator("#sketch-box figure.sketch-shown img")
    preview.wait_for(timeout=10_000)  # sent at once: the box shows what the model starts from
    assert "mode=drawing" in (preview.get_attribute("src") or "")
    page.check("#sketch-box input[name=sketch_mode][value=filled]")
    page.locator("#sketch-box img[src*='mode=filled']").wait_for(timeout=10_000)
    page.click("#generate-submit")
    page.get_by_text("Drawn from a sketch (star.png)").wait_for(timeout=10_000)
    job = GenerationJob.objects.get(prompt="a star")
    assert job.params["sketch"]["mode"] == "filled" and InputImage.objects.count() == 1
    assert alice_tab.errors == []


def test_a_designer_paints_a_mask_undoes_a_stroke_and_repaints_part_of_an_image(alice_tab: Page, alice) -> None:
    from generation.models import InputImage
    from tests.test_workflow import finished_job

    preset = AssetPresetFactory(slug="mask-icon", name="Mask Icon")
    image = finished_job(alice, preset=preset, model_key="tiny-flux").images.first()
    page = alice_tab.page
    page.goto(f"/images/{image.pk}/")
    page.get_by_role("link", name="Inpaint").click()
    canvas = page.locator(".mask-editor canvas")
    box = canvas.bounding_box()
    assert box is not None

    def stroke(y: float) -> None:
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * y, steps=8)
        page.mouse.up()

    stroke(0.2)
    stroke(0.8)
    page.get_by_role("button", name="Undo").click()  # the lower stroke goes
    page.fill("textarea[name=prompt]", "a red band")
    page.get_by_role("button", name="Repaint").click()
    page.get_by_text("Inpainted: a mask over").wait_for(timeout=10_000)
    job = GenerationJob.objects.get(prompt="a red band")
    mask = Image.open(InputImage.objects.get(pk=job.params["inpaint"]["mask"]).file.path).convert("L")
    width, height = mask.size
    assert mask.getpixel((width // 2, int(height * 0.2))) == 255  # the upper stroke is painted
    assert mask.getpixel((width // 2, int(height * 0.8))) == 0  # the undone one is not
    assert alice_tab.errors == []


@pytest.mark.skipif(not PLUGIN_UI.exists(), reason="build the plugin first: cd figma-plugin && npm ci && npm run build")
def test_an_icon_goes_from_review_to_the_library_and_into_figma_as_vectors(browser, live_server, alice, bob) -> None:
    """Alice submits an icon from its page, Bob (staff) approves it in the review queue, it is in
    the Brand Library, and the Figma panel's Library tab lists it and places it as vectors."""
    from django.core.files.base import ContentFile

    from generation.tokens import token_create

    bob.is_staff = True
    bob.save()
    image = finished_job(alice, "a paper plane", images=1).images.get()
    image.svg.save("0.svg", ContentFile(b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>'))
    designer, reviewer = Page(browser, live_server.url, "alice"), Page(browser, live_server.url, "bob")
    try:
        page = designer.page
        page.goto(f"/images/{image.id}/")
        page.click("text=Submit for review")
        page.fill("#id_note", "For the onboarding screens")
        page.fill("#id_tags", "onboarding")
        page.click("button:has-text('Submit 1 for review')")
        page.wait_for_selector("text=Waiting for review")

        review = reviewer.page
        review.goto("/review/")
        review.click("h2 a:has-text('a paper plane')")
        review.fill("textarea[name=comment]", "Ship it")
        review.click("button[value=approve]")
        review.wait_for_selector("#decision >> text=Approved")

        page.goto("/library/?tag=onboarding")
        assert page.locator("text=a paper plane").count() >= 1
    finally:
        designer.context.close()
        reviewer.context.close()
    assert designer.errors == [] and reviewer.errors == []

    context = browser.new_context()
    panel = context.new_page()
    errors: list[str] = []
    panel.on("pageerror", lambda exc: errors.append(str(exc)))
    panel.add_init_script(
        "window.__sent = []; window.parent = {postMessage: (m) => window.__sent.push(m.pluginMessage)};"
    )
    panel.goto(PLUGIN_UI.as_uri())
    panel.wait_for_function("window.__sent.some(m => m.type === 'load-settings')")
    token = token_create(user=alice, name="figma")[1]
    message = {"type": "settings", "settings": {"server": live_server.url, "token": token}}
    panel.evaluate("m => window.postMessage({pluginMessage: m}, '*')", message)
    panel.wait_for_selector("#main:not([hidden])")
    panel.click("#tab-library")
    panel.wait_for_selector("#library-results figure img")
    assert panel.inner_text("#library-status") == "1 approved"
    panel.locator("#library-results figure img").first.click()
    panel.wait_for_function("window.__sent.some(m => m.type === 'place')")
    placed = panel.evaluate(
        "(() => { const m = window.__sent.find(m => m.type === 'place'); return [m.description, m.svg]; })()"
    )
    context.close()
    assert placed[0] == "a paper plane" and placed[1].startswith("<svg")
    assert errors == []
