"""What a file someone brings back says about where it came from: made by this studio and
unchanged (its manifest is ours and intact), made by this studio and changed after download (the
manifest is broken or gone, but the watermark names the image), or no studio credentials.

A manifest is ours when its signing certificate chains to the studio's trust anchors (keys.py)
and it carries the studio's assertion; one signed by anyone else says nothing about this studio.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import c2pa
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from ..auth import is_reviewer
from ..models import GeneratedImage
from ..uploads import UploadError, bytes_label, read_image
from .keys import signing_keys
from .manifest import ASSERTION, CLAIM_GENERATOR, SVG
from .watermark import Mark, detect

MAX_BYTES = 64 * 2**20  # above any file the studio makes
MIMES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
SOURCE_KEYS = ("edit", "inpaint", "variation")  # params records whose "of" names the image a job started from
LINEAGE_STEPS = 20


class Verdict(StrEnum):
    UNMODIFIED = "unmodified"
    CHANGED = "changed"
    NONE = "none"


class Manifest(StrEnum):
    INTACT = "intact"  # ours, and the file is what we signed
    CHANGED = "changed"  # ours, but the file's content no longer matches it
    DAMAGED = "damaged"  # there is C2PA data, but it cannot be read (truncated, forged bytes)
    UNTRUSTED = "untrusted"  # signed by a certificate that is not the studio's, or not the studio's claim
    ABSENT = "absent"


MESSAGES = {
    Verdict.UNMODIFIED: "Made by this studio, unmodified: its content credentials are ours and intact.",
    Verdict.CHANGED: "Made by this studio, changed after download: its content credentials are broken or "
    "gone, but the watermark in its pixels names the studio image it came from.",
    Verdict.NONE: "No studio credentials: neither a manifest of this studio nor its watermark was found.",
}
# Where the studio signs nothing, a missing manifest is no sign of change.
UNSIGNED = (
    "Made by this studio: the watermark in its pixels names the studio image it came from. The studio "
    "has no certificate set, so its downloads carry no manifest, and whether the file changed cannot be told."
)


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    manifest: Manifest
    mark: Mark | None  # the watermark, where it was looked for and found
    image: GeneratedImage | None  # the studio image the credentials name, if it is still here
    studio_signs: bool = True  # whether the studio had a certificate when it looked

    @property
    def message(self) -> str:
        if self.verdict is Verdict.CHANGED and self.manifest is Manifest.ABSENT and not self.studio_signs:
            return UNSIGNED
        return MESSAGES[self.verdict]


def verify(data: bytes) -> Finding:
    """The finding for an uploaded file, or UploadError when it is not an image this can read."""
    if len(data) > MAX_BYTES:
        raise UploadError(f"over {bytes_label(MAX_BYTES)}")
    if _is_svg(data):
        state, named = _manifest(data, SVG)
        return _finding(state, named, None)
    picture, extension = read_image(data, max_bytes=MAX_BYTES)  # UploadError: too large, not an image, damaged
    state, named = _manifest(data, MIMES[extension])
    if state is Manifest.INTACT:
        return _finding(state, named, None)
    return _finding(state, named, detect(picture))


def _finding(state: Manifest, named: str | None, mark: Mark | None) -> Finding:
    if state is Manifest.INTACT:
        return Finding(Verdict.UNMODIFIED, state, None, _image(named))
    if mark is not None:
        signs = signing_keys() is not None
        return Finding(Verdict.CHANGED, state, mark, _by_short_id(mark.short_id), studio_signs=signs)
    return Finding(Verdict.NONE, state, None, None)


def _is_svg(data: bytes) -> bool:
    head = data[:4096].lstrip()
    return head.startswith((b"<?xml", b"<svg", b"<!--")) and b"<svg" in head


def _manifest(data: bytes, mime: str) -> tuple[Manifest, str | None]:
    """What the file's C2PA manifest says, and the studio image it names when it is ours."""
    keys = signing_keys()
    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, _context(keys.anchors if keys else None))
        if reader is None:
            return Manifest.ABSENT, None
        with reader:
            active = reader.get_active_manifest() or {}
            results = (reader.get_validation_results() or {}).get("activeManifest") or {}
    except Exception:  # native code parsing anyone's bytes: whatever fails, it cannot be read
        return Manifest.DAMAGED, None
    named = _our_assertion(active).get("image")
    trusted = "signingCredential.trusted" in {item.get("code") for item in results.get("success", [])}
    if keys is None or not trusted or not _claimed_by_studio(active) or not isinstance(named, str):
        return Manifest.UNTRUSTED, None
    return (Manifest.CHANGED if results.get("failure") else Manifest.INTACT), named


def _context(anchors: bytes | None) -> c2pa.Context:
    if anchors is None:
        return c2pa.Context()
    trust = {"trust": {"trust_anchors": anchors.decode()}, "verify": {"verify_trust": True}}
    return c2pa.Context(c2pa.Settings.from_dict(trust))


def _our_assertion(active: dict[str, Any]) -> dict[str, Any]:
    for assertion in active.get("assertions") or []:
        if isinstance(assertion, dict) and assertion.get("label") == ASSERTION:
            data = assertion.get("data")
            return data if isinstance(data, dict) else {}
    return {}


def _claimed_by_studio(active: dict[str, Any]) -> bool:
    generators = active.get("claim_generator_info") or []
    return any(isinstance(info, dict) and info.get("name") == CLAIM_GENERATOR for info in generators)


def _image(image_id: str | None) -> GeneratedImage | None:
    try:
        pk = uuid.UUID(str(image_id))
    except ValueError:
        return None
    return _images().filter(pk=pk).first()


def _by_short_id(short_id: str) -> GeneratedImage | None:
    """The image whose id starts with these 32 bits: a range on the primary key (uuids compare
    by their bytes on Postgres and as hex text on SQLite), so the index answers it."""
    low, high = uuid.UUID(short_id + "0" * 24), uuid.UUID(short_id + "f" * 24)
    return _images().filter(pk__gte=low, pk__lte=high).order_by("pk").first()


def _images() -> Any:
    return GeneratedImage.objects.select_related("job__preset", "job__owner")


def may_see(user: AbstractBaseUser | AnonymousUser, image: GeneratedImage) -> bool:
    """The image's owner, reviewers and staff see which image a file came from (and reviewers and
    staff its lineage); anyone else only the verdict."""
    return image.job.owner_id == getattr(user, "pk", None) or is_reviewer(user)


@dataclass(frozen=True)
class Step:
    kind: str  # "edit", "inpaint", "variation"
    image_id: str  # the image this step started from
    image: GeneratedImage | None  # None once deleted


def lineage(image: GeneratedImage) -> list[Step]:
    """The images this one was made from, nearest first (for staff: each links to its job)."""
    steps: list[Step] = []
    current: GeneratedImage | None = image
    while current is not None and len(steps) < LINEAGE_STEPS:
        record = next(((k, current.job.params[k]) for k in SOURCE_KEYS if current.job.params.get(k)), None)
        if record is None or not isinstance(record[1], dict) or "of" not in record[1]:
            break
        current = _image(record[1]["of"])
        steps.append(Step(record[0], str(record[1]["of"]), current))
    return steps
