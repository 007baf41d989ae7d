"""Take the README's screenshots from a running studio, in headless Chromium.

    ./studio up                      # in another terminal; note the user and password it prints
    .venv/bin/python scripts/screenshots.py --password PASSWORD [--url http://127.0.0.1:8000]

Needs the test requirements (Playwright) and Debian's `chromium`. It generates real images
with whatever model the studio runs, so the pictures show the studio as it is.
"""

from __future__ import annotations

import argparse
import io
import re
import secrets
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))
LAPTOP = {"width": 1366, "height": 900}
TABLET = {"width": 820, "height": 1180}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="designer")
    parser.add_argument("--password", required=True)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument(
        "--only",
        help="comma-separated: studio,live,finishing,compare,batch,history,ops,training,sketch,inpaint,steering,"
        "brand,review,tablet",
    )
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None

    def want(name: str) -> bool:
        return wanted is None or name in wanted

    DOCS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(base_url=args.url, viewport=LAPTOP)
        sign_in(page, args.username, args.password)
        for name, shoot in [
            ("studio", shoot_studio),
            ("live", shoot_live),
            ("finishing", shoot_finishing),
            ("compare", shoot_compare),
            ("batch", shoot_batch),
            ("history", lambda page: (page.goto("/history/"), save(page, "history"))),
            ("ops", lambda page: (page.goto("/ops/"), save(page, "ops"))),
            ("training", shoot_training),
            ("sketch", shoot_sketch),
            ("inpaint", shoot_inpaint),
            ("steering", shoot_steering),
            ("review", lambda page: shoot_review(page, browser, args.url)),
            ("brand", shoot_brand),
        ]:
            if want(name):
                shoot(page)
        if want("tablet"):
            page.set_viewport_size(TABLET)
            page.goto("/")
            save(page, "studio-tablet", full_page=False)
        browser.close()


def sign_in(page: Page, username: str, password: str, *, shot: bool = True) -> None:
    page.goto("/accounts/login/")
    if shot:
        save(page, "login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def shoot_studio(page: Page) -> None:
    page.check("input[name=preset][value=icon]")
    page.fill("textarea[name=prompt]", "a flat orange star icon")
    page.click("#generate-submit")
    page.wait_for_selector(".job progress, .job-complete", timeout=60_000)
    if page.locator(".job progress").count():  # the demo model is often done before a poll shows progress
        save(page, "progress", full_page=False)
    # Locator waits: the studio's CSP forbids the eval that wait_for_function needs.
    page.locator(".job.job-complete").first.wait_for(timeout=60_000)
    save(page, "studio", full_page=False)
    # More like this from the first image, then the grid with both results.
    page.locator(".job").first.locator("figure").first.get_by_role("button", name="Subtle").click()
    page.wait_for_selector("text=More like this (subtle)")
    page.locator(".job:not(.job-complete)").first.wait_for(state="detached", timeout=120_000)
    page.goto("/")
    page.locator(".job").nth(1).locator("button.star").first.click()
    save(page, "grid")
    page.locator(".job").nth(1).locator("figure a").first.click()
    page.wait_for_url("**/images/**")
    save(page, "image")


def shoot_live(page: Page) -> None:
    """A job caught mid-way, its tiles showing live previews (run the studio with
    STUDIO_PREVIEW_SECONDS=0.1 so the fast demo model leaves some to see)."""
    page.goto("/")
    page.check("input[name=preset][value=icon]")
    page.fill("textarea[name=prompt]", "a flat green heart icon")
    page.check("input[name=quality][value=ultra]")
    page.fill("input[name=variations]", "8")
    page.click("#generate-submit")
    page.locator(".job figure.preview").first.wait_for(timeout=120_000)
    # Half-way, when the previews show what the images are becoming (the first ones are noise).
    page.locator(".progress-text", has_text=re.compile(r"Step (2\d|3\d) of 50")).first.wait_for(timeout=120_000)
    save(page, "live-preview", full_page=False)
    page.locator(".job:not(.job-complete)").first.wait_for(state="detached", timeout=120_000)


def shoot_finishing(page: Page) -> None:
    """A finished Icon grid with its compliance scores, one icon on the checkerboard (its alpha),
    and its traced SVG as Chromium draws it beside its PNG."""
    page.goto("/")
    page.check("input[name=preset][value=icon]")
    page.fill("textarea[name=prompt]", "a flat blue heart icon")
    page.fill("input[name=variations]", "4")
    page.click("#generate-submit")
    page.locator(".job.job-complete").first.wait_for(timeout=120_000)
    page.locator(".job .compliance").first.wait_for()
    save(page, "finishing-grid", full_page=False)
    page.locator(".job").first.locator("figure a").first.click()
    page.wait_for_url("**/images/**")
    save(page, "transparent-icon", full_page=False)
    base = page.url.rstrip("/") + "/file/"
    shots = []
    for fmt in ("png", "svg"):
        page.goto(f"{base}?format={fmt}")
        shots.append(Image.open(io.BytesIO(page.screenshot(full_page=False))))
    side = Image.new("RGB", (sum(shot.width for shot in shots), max(shot.height for shot in shots)), "white")
    side.paste(shots[0], (0, 0))
    side.paste(shots[1], (shots[0].width, 0))
    side.save(DOCS / "svg-beside-png.png")
    print("wrote docs/svg-beside-png.png (left: the PNG, right: its SVG, each opened in Chromium)")


def shoot_compare(page: Page) -> None:
    page.goto("/compare/")
    page.fill("textarea[name=prompt]", "a flat purple heart icon")
    for box in page.locator("input[name=presets]").all():
        box.check()
    page.locator("input[name=presets]").last.uncheck()
    save(page, "compare-form")
    page.click("#compare-form button[type=submit]")
    page.wait_for_url("**/groups/**")
    page.locator("#group-body[hx-trigger]").wait_for(state="detached", timeout=300_000)
    save(page, "compare")


def shoot_batch(page: Page) -> None:
    page.goto("/batch/")
    page.fill(
        "textarea[name=descriptions]",
        "a flat blue shield icon\na flat orange star icon\na flat green heart icon\na flat purple trophy icon",
    )
    page.fill("input[name=variations]", "2")
    page.check("input[name=quality][value=draft]")
    page.click("#batch-form button[type=submit]")
    page.wait_for_url("**/groups/**")
    page.locator("#group-body[hx-trigger]").wait_for(state="detached", timeout=300_000)
    save(page, "batch")


def shoot_training(page: Page) -> None:
    """A training set from a zip of demo-kit icons with captions, a run on the demo model, its page."""
    page.goto("/training/")
    page.fill("input[name=name]", "Demo icons")
    page.select_option("select[name=preset]", label="Icon")
    page.select_option("select[name=family]", value="flux")
    page.fill("input[name=trigger_word]", "bsicon")
    page.locator("form.card button[type=submit]").first.click()
    page.wait_for_url("**/training/sets/**")
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "demo-icons.zip"
        archive.write_bytes(_demo_zip())
        page.set_input_files("input[name=files]", str(archive))
        page.get_by_role("button", name="Upload").click()
        page.wait_for_load_state()
    save(page, "training-set")
    page.select_option("select[name=model]", label="Demo brand (offline)")
    page.click("#run-form button[type=submit]")
    page.wait_for_url("**/training/runs/**")
    page.wait_for_selector("#run-body .status-complete", timeout=600_000)
    save(page, "training-run")


def _demo_zip() -> bytes:
    from generation.devtools.demo_kit import PALETTE, SHAPES, caption, draw_icon

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(28):
            colour, shape = list(PALETTE)[n % 4], SHAPES[(n // 4) % 6]
            image = io.BytesIO()
            draw_icon(colour, shape, size=256).save(image, format="PNG")
            archive.writestr(f"icons/{n:02d}-{colour}-{shape}.png", image.getvalue())
            archive.writestr(
                f"icons/{n:02d}-{colour}-{shape}.txt", caption(colour, shape) + " on a light grey background"
            )
    return buffer.getvalue()


def shoot_sketch(page: Page) -> None:
    """A hand-drawn star chosen in the sketch box (its outlines filled, as the box previews),
    and the job drawn from it."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from sketch_report import hand_drawn_star

    with tempfile.TemporaryDirectory() as scratch:
        drawing = Path(scratch) / "star-sketch.png"
        hand_drawn_star().save(drawing)
        choose_sketch(page, drawing, "a flat blue star icon", mode="filled")
        page.locator("#sketch-box").scroll_into_view_if_needed()
        save(page, "sketch-box", full_page=False)
        page.click("#generate-submit")
        page.get_by_text("Drawn from a sketch").first.wait_for(timeout=20_000)
        page.locator(".job.job-complete").first.wait_for(timeout=120_000)
        page.goto("/")
        save(page, "sketch-job", full_page=False)
        shoot_canny(page, Path(scratch))


def choose_sketch(page: Page, drawing: Path, prompt: str, *, mode: str) -> None:
    """An Icon described and `drawing` chosen in the sketch box in `mode`, its preview drawn."""
    page.goto("/")
    page.check("input[name=preset][value=icon]")
    page.fill("textarea[name=prompt]", prompt)
    page.locator("#sketch-box summary").click()
    page.set_input_files("#sketch-box input[type=file]", str(drawing))
    page.locator("#sketch-box figure.sketch-shown img").wait_for(timeout=20_000)
    page.check(f"#sketch-box input[name=sketch_mode][value={mode}]")
    page.locator(f"#sketch-box img[src*='mode={mode}']").wait_for(timeout=20_000)
    page.wait_for_load_state("networkidle")  # the preview drawn, not just its tag


def shoot_canny(page: Page, scratch: Path) -> None:
    """A hand-drawn arrow (a shape the demo model was never taught) followed by its edges
    through the demo model's canny ControlNet: the box's preview, then the job."""
    from sketch_report import hand_drawn_arrow

    drawing = scratch / "arrow-sketch.png"
    hand_drawn_arrow().save(drawing)
    choose_sketch(page, drawing, "a flat green arrow icon", mode="canny")
    page.click("#generate-submit")
    page.get_by_text("its canny through").first.wait_for(timeout=20_000)
    page.locator(".job.job-complete").nth(1).wait_for(timeout=120_000)  # this one and the star's
    page.goto("/")
    save(page, "sketch-canny", full_page=False)


def shoot_inpaint(page: Page) -> None:
    """The inpaint page with a stroke painted over the latest image."""
    page.goto("/history/")
    page.locator(".job-complete figure a").first.click()
    page.wait_for_url("**/images/**")
    page.get_by_role("link", name="Inpaint").click()
    canvas = page.locator(".mask-editor canvas")
    box = canvas.bounding_box()
    if box:
        page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.3)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.45, steps=10)
        page.mouse.up()
    page.fill("#inpaint-form textarea[name=prompt]", "a flat green heart icon")
    save(page, "inpaint")
    page.get_by_role("button", name="Repaint").click()
    page.get_by_text("Inpainted: a mask over").wait_for(timeout=20_000)
    page.locator(".job.job-complete").first.wait_for(timeout=120_000)
    save(page, "inpaint-result", full_page=False)


TINY_KLEIN = "Tiny FLUX.2 [klein] (random weights)"  # as install_tiny_model names it


def shoot_steering(page: Page) -> None:
    """Style references in the form and a chain of two edits on an image's page. The demo model
    takes neither, so these need `./studio manage install_tiny_model flux2` (a random-weight
    FLUX.2 klein, offered to staff): its images are noise, the pages are what they show."""
    page.goto("/history/")
    drawn = page.locator(".job-complete").filter(has_not_text="random weights")  # a demo icon
    drawn.first.locator("figure a").first.click()
    page.wait_for_url("**/images/**")
    source = page.url
    page.get_by_role("link", name="Use as reference").click()
    page.check("input[name=model][value=tiny-flux2]")
    page.fill("textarea[name=prompt]", "a flat blue star icon")
    boxes = page.locator(".references-box")
    boxes.wait_for(timeout=20_000)
    path = DOCS / "references-form.png"
    page.locator("#generate-form").screenshot(path=str(path))  # the model picked and its references
    print(f"wrote {path.relative_to(DOCS.parent)}")
    page.goto(source)
    for instruction in ("make the background blue", "add a checkmark"):
        page.get_by_role("link", name="Edit", exact=True).click()
        page.fill("textarea[name=instruction]", instruction)
        page.select_option("select[name=model]", label=TINY_KLEIN)
        page.fill("input[name=variations]", "1")
        page.get_by_role("button", name="Edit").click()
        page.locator(".job.job-complete").first.wait_for(timeout=120_000)
        page.locator(".job-complete figure a").first.click()
        page.wait_for_url("**/images/**")
    save(page, "edit-chain")


def shoot_review(page: Page, browser: Any, url: str) -> None:
    """A second designer (made in the admin, so it works on any studio) generates icons and
    submits them; the signed-in reviewer's queue, one approved, and the Brand Library."""
    password = "screenshots-" + secrets.token_urlsafe(12)
    page.goto("/admin/auth/user/add/")
    page.fill("input[name=username]", f"alex-{secrets.token_hex(3)}")
    page.fill("input[name=password1]", password)
    page.fill("input[name=password2]", password)
    username = page.input_value("input[name=username]")
    page.click("input[name=_save]")
    designer = browser.new_page(base_url=url, viewport=LAPTOP)
    sign_in(designer, username, password, shot=False)
    for prompt in ("a flat blue paper plane icon", "a flat green shield icon"):
        designer.goto("/")
        designer.check("input[name=preset][value=icon]")
        designer.fill("textarea[name=prompt]", prompt)
        designer.fill("input[name=variations]", "2")
        designer.click("#generate-submit")
        done = designer.locator(".job.job-complete", has_text=prompt).first
        done.wait_for(timeout=120_000)
        done.locator("figure a").first.click()
        designer.wait_for_url("**/images/**")
        designer.click("text=Submit for review")
        designer.fill("#id_note", "For the onboarding screens")
        designer.fill("#id_tags", "onboarding, q3 campaign")
        designer.click("button:has-text('for review')")
        designer.wait_for_url("**/review/mine/**")
    designer.close()
    page.goto("/review/")
    save(page, "review-queue")
    for _ in range(2):
        page.goto("/review/")
        page.locator(".review-row h2 a").first.click()
        page.fill("textarea[name=comment]", "On brand: approved")
        page.click("button[value=approve]")
        page.locator("#decision", has_text="Approved").wait_for()
    page.goto("/library/")
    save(page, "library")


def shoot_brand(page: Page) -> None:
    """The Brand page, after giving the first kit word rules in the admin as staff would (a kit
    with none shows "no banned words"): a new version, listed with what changed."""
    page.goto("/admin/generation/brandkit/")
    page.locator("#result_list tbody a").first.click()
    if page.input_value("textarea[name=banned_words]").strip() in ("", "[]"):
        page.fill("textarea[name=banned_words]", '["clipart", "photorealistic"]')
        page.fill("textarea[name=required_terms]", '["flat vector"]')
        page.click("input[name=_save]")
    page.goto("/brand/")
    page.click("summary:has-text('Versions')")
    save(page, "brand")


def save(page: Page, name: str, *, full_page: bool = True) -> None:
    path = DOCS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"wrote {path.relative_to(DOCS.parent)}")


if __name__ == "__main__":
    main()
