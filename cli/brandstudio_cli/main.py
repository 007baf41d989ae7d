"""`brandstudio`: Brand Studio from a terminal or a script, through the REST API (/api/v1/).

Configuration comes from --server/--token, else BRANDSTUDIO_SERVER/BRANDSTUDIO_TOKEN, else the
file `brandstudio configure` writes (~/.config/brandstudio/config.json, or $BRANDSTUDIO_CONFIG).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx

EXIT_JOB_FAILED, EXIT_AUTH, EXIT_INPUT, EXIT_NOT_FOUND, EXIT_UNREACHABLE, EXIT_RATE = 1, 3, 4, 5, 6, 7
ENDED = {"complete", "failed", "cancelled"}
FORMATS = ("png", "webp", "svg")


class StudioError(click.ClickException):
    """Refused input; subclasses carry the other exit codes (click exits with `exit_code`)."""

    exit_code = EXIT_INPUT


class JobFailed(StudioError):
    exit_code = EXIT_JOB_FAILED


class AuthError(StudioError):
    exit_code = EXIT_AUTH


class NotFound(StudioError):
    exit_code = EXIT_NOT_FOUND


class Unreachable(StudioError):
    exit_code = EXIT_UNREACHABLE


class RateLimited(StudioError):
    exit_code = EXIT_RATE


def config_path() -> Path:
    return Path(os.environ.get("BRANDSTUDIO_CONFIG") or Path.home() / ".config" / "brandstudio" / "config.json")


def load_config() -> dict[str, str]:
    try:
        return json.loads(config_path().read_text())
    except (OSError, ValueError):
        return {}


class Studio:
    """The API, with its errors turned into messages and exit codes a script can rely on."""

    def __init__(self, server: str, token: str, *, timeout: float = 30) -> None:
        self.client = httpx.Client(
            base_url=server.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}", "User-Agent": "brandstudio-cli/0.1"},
            timeout=timeout,
        )

    def call(self, method: str, path: str, *, retries: int = 3, **kwargs: Any) -> Any:
        for _ in range(retries + 1):
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                raise Unreachable(f"Cannot reach the studio at {self.client.base_url}: {exc}") from None
            if response.status_code != 429:
                break
            wait = int(response.headers.get("Retry-After", "5"))
            click.echo(f"Rate limited; waiting {wait} s as the studio asks.", err=True)
            time.sleep(wait)
        return self._result(response)

    def _result(self, response: httpx.Response) -> Any:
        if response.status_code < 400:
            if response.status_code == 204 or not response.content:
                return None
            if response.headers.get("content-type", "").startswith("application/json"):
                return response.json()
            return response
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:200]}
        message = body.get("message") or f"HTTP {response.status_code}"
        if body.get("field"):
            message = f"{body['field']}: {message}"
        errors = {401: AuthError, 403: AuthError, 404: NotFound, 429: RateLimited}
        raise errors.get(response.status_code, StudioError)(message)

    def download(self, url: str, target: Path) -> Path:
        with self.client.stream("GET", url) as response:
            if response.status_code >= 400:
                response.read()
                self._result(response)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as fh:
                for chunk in response.iter_bytes():
                    fh.write(chunk)
        return target


pass_studio = click.make_pass_decorator(Studio)


@click.group()
@click.option("--server", envvar="BRANDSTUDIO_SERVER", help="Studio URL, e.g. http://127.0.0.1:8000")
@click.option("--token", envvar="BRANDSTUDIO_TOKEN", help="Personal API token (Profile › API tokens)")
@click.pass_context
def cli(ctx: click.Context, server: str | None, token: str | None) -> None:
    """Generate on-brand images with Brand Studio from the command line."""
    if ctx.invoked_subcommand == "configure":
        return
    saved = load_config()
    server, token = server or saved.get("server"), token or saved.get("token")
    if not server or not token:
        raise AuthError("Not configured: run `brandstudio configure --server URL --token TOKEN`.")
    ctx.obj = Studio(server, token)


@cli.command()
@click.option("--server", required=True, help="Studio URL, e.g. http://127.0.0.1:8000")
@click.option("--token", required=True, help="Personal API token (Profile › API tokens)")
def configure(server: str, token: str) -> None:
    """Save the server and token (checked against the studio first)."""
    models = Studio(server, token).call("GET", "/models")
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"server": server, "token": token}))
    path.chmod(0o600)
    click.echo(f"Saved to {path}. The studio offers {len(models)} model(s).")


_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="png",
    show_default=True,
    help="svg: the traced SVG of asset types that have one (others are skipped)",
)


_out_option = click.option(
    "--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True
)
_no_wait_option = click.option("--no-wait", is_flag=True, help="Print the job id and return at once")


def _with(options: list[Any], function: Any) -> Any:
    for option in reversed(options):
        function = option(function)
    return function


def _job_options(function: Any) -> Any:
    options = [
        click.option("--asset-type", "-a", default="icon", show_default=True),
        click.option("--model", "-m", default=None, help="Model key (default: the studio's)"),
        click.option("--quality", "-q", type=click.Choice(["draft", "standard", "high", "ultra"]), default="standard"),
        click.option("--size", default=None, help="WIDTHxHEIGHT (default: the asset type's)"),
        click.option("--variations", "-n", type=click.IntRange(1, 8), default=4, show_default=True),
        _out_option,
        _format_option,
    ]
    return _with(options, function)


def _follow_options(function: Any) -> Any:
    """Where a follow-up job's images go (--out, --format), or only its id (--no-wait)."""
    return _with([_out_option, _format_option, _no_wait_option], function)


@cli.command()
@click.argument("description")
@_job_options
@click.option("--seed", type=int, default=None)
@click.option(
    "--sketch",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A PNG, JPEG or WebP drawing to start from (the description says what it is)",
)
@click.option(
    "--follow",
    "sketch_follow",
    type=click.Choice(["close", "loose"]),
    default="close",
    show_default=True,
    help="How closely the model follows the sketch",
)
@click.option(
    "--sketch-mode",
    "--control",
    "sketch_mode",
    type=click.Choice(["drawing", "filled", "canny", "tile", "depth"]),
    default="drawing",
    show_default=True,
    help="filled: fill its closed outlines first; canny, tile, depth: follow it through the model's ControlNet",
)
@click.option(
    "--reference",
    "references",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A style reference (repeat for up to 4), for models with an IP-Adapter add-on",
)
@click.option("--reference-strength", type=click.FloatRange(0.05, 1.0), default=0.6, show_default=True)
@_no_wait_option
@pass_studio
def generate(
    studio: Studio,
    description: str,
    out: Path,
    fmt: str,
    no_wait: bool,
    sketch: Path | None,
    sketch_follow: str,
    sketch_mode: str,
    references: tuple[Path, ...],
    reference_strength: float,
    **options: Any,
) -> None:
    """Generate images for DESCRIPTION, follow the progress, save them into --out."""
    payload = _payload(description, options)
    if references:
        payload["references"] = [{"input": upload_input(studio, path)["id"]} for path in references]
        payload["reference_strength"] = reference_strength
    if sketch is not None:
        sent = upload_input(studio, sketch)
        payload["sketch"] = {"input": sent["id"], "follow": sketch_follow, "mode": sketch_mode}
    _follow_and_save(studio, studio.call("POST", "/jobs", json=payload), out, fmt, no_wait=no_wait)


def upload_input(studio: Studio, path: Path, kind: str = "sketch") -> dict[str, Any]:
    """Send an input image once (the studio keeps one copy per content) and return its record."""
    with path.open("rb") as fh:
        result: dict[str, Any] = studio.call("POST", f"/inputs?kind={kind}", files={"file": (path.name, fh)})
    return result


@cli.command()
@click.argument("image_id")
@click.argument("instruction")
@click.option("--model", "-m", default=None, help="An edit model's key (default: the studio's first)")
@click.option("--variations", "-n", type=click.IntRange(1, 8), default=2, show_default=True)
@_follow_options
@pass_studio
def edit(
    studio: Studio,
    image_id: str,
    instruction: str,
    model: str | None,
    variations: int,
    out: Path,
    fmt: str,
    no_wait: bool,
) -> None:
    """Change the studio image IMAGE_ID as INSTRUCTION says ("make the background blue")."""
    body: dict[str, Any] = {"instruction": instruction, "variations": variations}
    if model:
        body["model"] = model
    _follow_and_save(studio, studio.call("POST", f"/images/{image_id}/edit", json=body), out, fmt, no_wait=no_wait)


@cli.command()
@click.argument("image_id")
@click.option(
    "--mask",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PNG: white (or opaque) where the image should change, the image's proportions",
)
@click.option("--description", "-d", default=None, help="What goes there (default: the image's description)")
@click.option("--variations", "-n", type=click.IntRange(1, 8), default=4, show_default=True)
@_follow_options
@pass_studio
def inpaint(
    studio: Studio,
    image_id: str,
    mask: Path,
    description: str | None,
    variations: int,
    out: Path,
    fmt: str,
    no_wait: bool,
) -> None:
    """Repaint where MASK paints over the studio image IMAGE_ID, keeping the rest."""
    sent = upload_input(studio, mask, kind="mask")
    body: dict[str, Any] = {"mask": sent["id"], "variations": variations}
    if description:
        body["description"] = description
    _follow_and_save(studio, studio.call("POST", f"/images/{image_id}/inpaint", json=body), out, fmt, no_wait=no_wait)


@cli.command()
@click.argument("image_id")
@click.option("--left", type=click.IntRange(0, 100), default=0, help="% of the image's width added on the left")
@click.option("--right", type=click.IntRange(0, 100), default=0, help="% of its width added on the right")
@click.option("--top", type=click.IntRange(0, 100), default=0, help="% of its height added on top")
@click.option("--bottom", type=click.IntRange(0, 100), default=0, help="% of its height added below")
@click.option("--description", "-d", default=None, help="What goes there (default: the image's description)")
@click.option("--variations", "-n", type=click.IntRange(1, 8), default=4, show_default=True)
@_follow_options
@pass_studio
def outpaint(
    studio: Studio,
    image_id: str,
    left: int,
    right: int,
    top: int,
    bottom: int,
    description: str | None,
    variations: int,
    out: Path,
    fmt: str,
    no_wait: bool,
) -> None:
    """Extend the studio image IMAGE_ID's canvas (e.g. --left 25 --right 25); the model draws the new part."""
    body: dict[str, Any] = {"left": left, "right": right, "top": top, "bottom": bottom, "variations": variations}
    if description:
        body["description"] = description
    _follow_and_save(studio, studio.call("POST", f"/images/{image_id}/outpaint", json=body), out, fmt, no_wait=no_wait)


def _follow_and_save(studio: Studio, job: dict[str, Any], out: Path, fmt: str, *, no_wait: bool) -> None:
    """A submitted job: its id alone (--no-wait), or followed to its end and its images saved."""
    if no_wait:
        click.echo(job["id"])
        return
    job = follow(studio, job)
    _finish(job, _saved_some(job["images"], save_images(studio, job, out, fmt), fmt))


def _payload(description: str, options: dict[str, Any]) -> dict[str, Any]:
    payload = {"asset_type": options["asset_type"], "description": description, "quality": options["quality"]}
    payload["variations"] = options["variations"]
    for key in ("model", "size", "seed"):
        if options.get(key) is not None:
            payload[key] = options[key]
    return payload


def follow(studio: Studio, job: dict[str, Any], *, interval: float = 0.5) -> dict[str, Any]:
    """Poll until the job ends, drawing a progress bar on stderr."""
    label = job["description"][:40]
    with click.progressbar(length=100, label=label, file=sys.stderr, show_eta=False) as bar:
        shown = 0
        while job["status"] not in ENDED:
            time.sleep(interval)
            job = studio.call("GET", f"/jobs/{job['id']}")
            percent = int(job["progress"] * 100)
            bar.update(percent - shown)
            shown = percent
        bar.update(100 - shown)
    return job


def save_images(studio: Studio, job: dict[str, Any], out: Path, fmt: str = "png") -> list[Path]:
    """Download the job's images in `fmt`; with svg, images that have none are skipped, saying so."""
    slug = "".join(c if c.isalnum() else "-" for c in job["description"].lower())[:40].strip("-") or "image"
    saved = []
    for image in job["images"]:
        target = out / f"{job['asset_type']}-{slug}-seed{image['seed']}.{fmt}"
        if fmt != "svg":
            saved.append(studio.download(image[f"{fmt}_url"], target))
        elif not image.get("svg_url"):
            click.echo(f"Skipped seed {image['seed']}: {job['asset_type']} is not traced to SVG.", err=True)
        else:
            try:
                saved.append(studio.download(image["svg_url"], target))
            except NotFound as exc:  # traced, but this image's SVG is gone or never finished
                click.echo(f"Skipped seed {image['seed']}: {exc.message}", err=True)
    return saved


def _saved_some(images: list[Any], saved: list[Path], fmt: str) -> list[Path]:
    """Skipping some images is fine; a download that saved none of them is a failure."""
    if images and not saved:
        raise NotFound(f"None of the {len(images)} image(s) could be downloaded as {fmt.upper()}.")
    return saved


def _finish(job: dict[str, Any], saved: list[Path]) -> None:
    for path in saved:
        click.echo(str(path))
    if job.get("license_notice"):
        click.echo(f"Note: {job['license_notice']}", err=True)
    if job["status"] != "complete":
        raise JobFailed(f"The job {job['status']}: {job.get('error') or 'no reason given'}")


@cli.command()
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@_job_options
@pass_studio
def batch(studio: Studio, file: io.TextIOBase, out: Path, fmt: str, **options: Any) -> None:
    """Generate for every description in FILE (one per line, or a CSV with a prompt column)."""
    descriptions = read_descriptions(file.read())
    if not descriptions:
        raise StudioError("No descriptions in that file.")
    jobs = [studio.call("POST", "/jobs", json=_payload(text, options)) for text in descriptions]
    failed, images, saved = 0, [], []
    for job in jobs:
        job = follow(studio, job)
        images += job["images"]
        for path in save_images(studio, job, out, fmt):
            saved.append(path)
            click.echo(str(path))
        failed += job["status"] != "complete"
    _saved_some(images, saved, fmt)
    if failed:
        raise JobFailed(f"{failed} of {len(jobs)} jobs did not complete.")


def read_descriptions(text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text)))
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    for name in ("prompt", "description", "subject"):
        if name in header:
            column = header.index(name)
            return [row[column].strip() for row in rows[1:] if len(row) > column and row[column].strip()]
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@cli.command()
@click.option("--q", default=None, help="Words in the description")
@click.option("--asset-type", default=None)
@click.option("--status", type=click.Choice(["queued", "processing", "complete", "failed", "cancelled"]))
@click.option("--starred", is_flag=True)
@click.option(
    "--min-compliance", type=click.FloatRange(0, 1), default=None, help="Only jobs with an image this on-brand (0-1)"
)
@click.option("--max-compliance", type=click.FloatRange(0, 1), default=None)
@click.option("--sort", type=click.Choice(["-created", "created", "-compliance", "compliance"]), default=None)
@click.option("--page", type=int, default=1)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON")
@pass_studio
def history(studio: Studio, as_json: bool, **filters: Any) -> None:
    """Your jobs, newest first (or as --sort says), with how on-brand their images are; --json for scripts."""
    params = {k: v for k, v in filters.items() if v not in (None, False)}
    body = studio.call("GET", "/history", params=params)
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    for job in body["jobs"]:
        images = job["images"]
        click.echo(
            f"{job['id']}  {job['status']:10} {job['asset_type']:22} {len(images)} img  "
            f"{compliance_range(images):16} {job['description']}"
        )
    # A footer of the table, on its own line after a blank one (--json is the form for scripts).
    click.echo(f"\npage {body['page']} of {body['pages']} ({body['count']} jobs)")


def _score(image: dict[str, Any]) -> float | None:
    compliance = image.get("compliance") or {}
    return compliance.get("after") if compliance.get("after") is not None else compliance.get("before")


def compliance_label(image: dict[str, Any]) -> str:
    """The image's score as "on-brand 97%" or "on-brand 62% (below 90%)"; "" without one."""
    score = _score(image)
    if score is None:
        return ""
    compliance = image["compliance"]
    below = f" (below {compliance['floor']:.0%})" if compliance.get("flagged") and compliance.get("floor") else ""
    return f"on-brand {score:.0%}{below}"


def compliance_range(images: list[dict[str, Any]]) -> str:
    """A job's images' scores as "on-brand 62-98%" (one: "on-brand 97%"), "-" without any."""
    scores = sorted(score for image in images if (score := _score(image)) is not None)
    if not scores:
        return "-"
    low, high = round(scores[0] * 100), round(scores[-1] * 100)
    return f"on-brand {low}%" if low == high else f"on-brand {low}-{high}%"


@cli.group()
def favorites() -> None:
    """Starred images: list, add, remove."""


@favorites.command("list")
@pass_studio
def favorites_list(studio: Studio) -> None:
    for image in studio.call("GET", "/favorites"):
        score = compliance_label(image) or "-"
        click.echo(f"{image['id']}  seed {image['seed']:<10} {score:26} {image['page_url']}")


@favorites.command("add")
@click.argument("image_id")
@pass_studio
def favorites_add(studio: Studio, image_id: str) -> None:
    studio.call("POST", "/favorites", json={"image_id": image_id})


@favorites.command("remove")
@click.argument("image_id")
@pass_studio
def favorites_remove(studio: Studio, image_id: str) -> None:
    studio.call("DELETE", f"/favorites/{image_id}")


@cli.command()
@click.argument("job_id")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@click.option("--zip", "as_zip", is_flag=True, help="One zip (PNGs, with SVGs and WebPs where stored)")
@_format_option
@pass_studio
def download(studio: Studio, job_id: str, out: Path, as_zip: bool, fmt: str) -> None:
    """Download a job's images (or the job as one zip)."""
    job = studio.call("GET", f"/jobs/{job_id}")
    if as_zip:
        click.echo(str(studio.download(job["zip_url"], out / f"{job['asset_type']}-{job_id[:8]}.zip")))
    else:
        _finish(job, _saved_some(job["images"], save_images(studio, job, out, fmt), fmt))


@cli.command("asset-types")
@pass_studio
def asset_types(studio: Studio) -> None:
    for item in studio.call("GET", "/asset-types"):
        click.echo(f"{item['slug']:24} {item['name']:24} sizes {', '.join(item['sizes'])}")


@cli.command()
@pass_studio
def models(studio: Studio) -> None:
    for item in studio.call("GET", "/models"):
        default = " (default)" if item["default"] else ""
        click.echo(f"{item['key']:20} {item['name']}{default} · {item['license']}")


# --- review and the Brand Library (the API's /submissions, /library)


@cli.command()
@click.argument("image_ids", nargs=-1, required=True)
@click.option("--note", default="", help="What the reviewers should look at")
@click.option("--tag", "tags", multiple=True, help="A tag for the library (repeat for several)")
@pass_studio
def submit(studio: Studio, image_ids: tuple[str, ...], note: str, tags: tuple[str, ...]) -> None:
    """Submit your images for review: approved, they join the Brand Library."""
    payload = {"image_ids": list(image_ids), "note": note, "tags": list(tags)}
    for submission in studio.call("POST", "/submissions", json=payload):
        why = f"  ({submission['why_not']})" if submission.get("why_not") else ""
        click.echo(f"{submission['id']}  {submission['state']}{why}  {submission['page_url']}")


@cli.command()
@click.option("--page", type=int, default=1)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON")
@pass_studio
def submissions(studio: Studio, page: int, as_json: bool) -> None:
    """Your submissions and their outcome, newest first."""
    body = studio.call("GET", "/submissions", params={"page": page})
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    for item in body["items"]:
        comment = f"  “{item['comment']}”" if item.get("comment") else ""
        click.echo(f"{item['id']}  {item['state']:32} {item['lineage']['description']}{comment}")
    click.echo(f"\npage {body['page']} of {body['pages']} ({body['count']} submissions)")


@cli.group()
def library() -> None:
    """The Brand Library: approved images, for everyone."""


@library.command("search")
@click.argument("words", required=False)
@click.option("--asset-type", default=None, help="An asset type's slug, e.g. icon")
@click.option("--tag", default=None)
@click.option("--colour", "--color", "colour", default=None, help="A colour like #0f6cbd, or its name")
@click.option("--since", default=None, help="Approved on or after YYYY-MM-DD")
@click.option("--until", default=None, help="Approved on or before YYYY-MM-DD")
@click.option("--page", type=int, default=1)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON")
@pass_studio
def library_search(studio: Studio, words: str | None, as_json: bool, **filters: Any) -> None:
    """Approved images matching WORDS (in the description or note) and the filters."""
    params = {k: v for k, v in {**filters, "q": words}.items() if v not in (None, "")}
    body = studio.call("GET", "/library", params=params)
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    for item in body["items"]:
        colours = " ".join(colour["hex"] for colour in item["colours"][:3])
        tags = ", ".join(item["tags"]) or "-"
        retired = " [retired]" if item["retired"] else ""
        click.echo(f"{item['id']}  {item['asset_type']:22} {colours:24} {tags:24} {item['description']}{retired}")
    click.echo(f"\npage {body['page']} of {body['pages']} ({body['count']} approved)")


@library.command("download")
@click.argument("item_id")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@_format_option
@pass_studio
def library_download(studio: Studio, item_id: str, out: Path, fmt: str) -> None:
    """Download a library item (PNG, WebP, or SVG where it was traced), with its content credentials."""
    item = studio.call("GET", f"/library/{item_id}")
    url = item.get(f"{fmt}_url")
    if not url:
        raise StudioError(f"Item {item_id} has no {fmt.upper()}; try --format png.")
    click.echo(str(studio.download(url, out / f"{item['asset_type']}-{item['id'][:8]}.{fmt}")))
