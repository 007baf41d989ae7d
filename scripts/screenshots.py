"""Take the README's screenshots from a running studio, in headless Chromium.

    ./studio up                      # in another terminal; note the user and password it prints
    .venv/bin/python scripts/screenshots.py --password PASSWORD [--url http://127.0.0.1:8000]

Needs the test requirements (Playwright) and Debian's `chromium`. It generates real images
with whatever model the studio runs, so the pictures show the studio as it is.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

DOCS = Path(__file__).resolve().parent.parent / "docs"
LAPTOP = {"width": 1366, "height": 900}
TABLET = {"width": 820, "height": 1180}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="designer")
    parser.add_argument("--password", required=True)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    DOCS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(base_url=args.url, viewport=LAPTOP)
        sign_in(page, args.username, args.password)
        shoot_studio(page)
        shoot_compare(page)
        shoot_batch(page)
        page.goto("/history/")
        save(page, "history")
        page.goto("/ops/")
        save(page, "ops")
        page.set_viewport_size(TABLET)
        page.goto("/")
        save(page, "studio-tablet", full_page=False)
        browser.close()


def sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    save(page, "login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def shoot_studio(page: Page) -> None:
    page.check("input[name=preset][value=icon]")
    page.fill("textarea[name=prompt]", "a clipboard with three checkmarks")
    page.click("#generate-submit")
    page.wait_for_selector(".job progress", timeout=60_000)
    time.sleep(1.5)
    save(page, "progress", full_page=False)
    page.wait_for_function("document.querySelector('.job') && document.querySelector('.job').matches('.job-complete')")
    save(page, "studio", full_page=False)
    # More like this from the first image, then the grid with both results.
    page.locator(".job").first.locator("figure").first.get_by_role("button", name="Subtle").click()
    page.wait_for_selector("text=More like this (subtle)")
    page.wait_for_function("document.querySelectorAll('.job-complete').length >= 2", timeout=120_000)
    page.goto("/")
    page.locator(".job").nth(1).locator("button.star").first.click()
    save(page, "grid")
    page.locator(".job").nth(1).locator("figure a").first.click()
    page.wait_for_url("**/images/**")
    save(page, "image")


def shoot_compare(page: Page) -> None:
    page.goto("/compare/")
    page.fill("textarea[name=prompt]", "a paper plane")
    for box in page.locator("input[name=presets]").all():
        box.check()
    page.locator("input[name=presets]").last.uncheck()
    save(page, "compare-form")
    page.click("#compare-form button[type=submit]")
    page.wait_for_url("**/groups/**")
    page.wait_for_function("!document.querySelector('#group-body[hx-trigger]')", timeout=300_000)
    save(page, "compare")


def shoot_batch(page: Page) -> None:
    page.goto("/batch/")
    page.fill("textarea[name=descriptions]", "a paper plane\na lighthouse\na key\na compass")
    page.fill("input[name=variations]", "2")
    page.check("input[name=quality][value=draft]")
    page.click("#batch-form button[type=submit]")
    page.wait_for_url("**/groups/**")
    page.wait_for_function("!document.querySelector('#group-body[hx-trigger]')", timeout=300_000)
    save(page, "batch")


def save(page: Page, name: str, *, full_page: bool = True) -> None:
    path = DOCS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"wrote {path.relative_to(DOCS.parent)}")


if __name__ == "__main__":
    main()
