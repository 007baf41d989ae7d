"""Training sets: safe uploads (images or a zip of them) and the validation report.

No torch here: this runs in the web process. Every upload is checked by content (Pillow
decides the format, not the file name), against decompression bombs (pixel limit, read
before decoding) and zip bombs (archive, entry count, entry size, total size and ratio
limits, with sizes enforced while reading rather than trusted from the zip's headers).
Files are stored under the set's own folder with names the studio makes.
"""

from __future__ import annotations

import io
import lzma
import re
import struct
import uuid
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from PIL import Image

from ..models import AssetPreset, TrainingImage, TrainingSet
from ..storable import storable
from ..uploads import MAX_PIXELS, UploadError, read_image
from ..uploads import bytes_label as _bytes
from .defaults import training_side

MAX_IMAGE_BYTES = 50 * 2**20
MAX_ZIP_BYTES = 1 * 2**30
MAX_ZIP_ENTRIES = 1000
MAX_ZIP_TOTAL = 4 * 2**30
MAX_ZIP_RATIO = 200  # uncompressed / compressed, per entry
MAX_CAPTION_BYTES = 10_000
MIN_UPLOAD_SIDE = 32  # smaller than the smallest model draws (the demo's 64 px) by half


@dataclass
class UploadResult:
    added: list[TrainingImage] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)


def add_uploads(training_set: TrainingSet, files: Sequence[IO[bytes]] | Sequence[UploadedFile]) -> UploadResult:
    """Add uploaded images and zips of images (with optional same-name .txt captions)."""
    result = UploadResult()
    earlier = list(training_set.images.only("pk", "hashes"))  # each new image is compared with these once
    for upload in files:
        name = str(getattr(upload, "name", "upload"))
        try:
            if zipfile.is_zipfile(upload):
                upload.seek(0)
                for entry in _zip_entries(upload, size=getattr(upload, "size", None)):
                    if entry.refused:
                        result.rejected.append((entry.name, entry.refused))
                    else:
                        _add_one(training_set, entry.name, entry.data, entry.caption, result, earlier)
            else:
                upload.seek(0)
                data = upload.read(MAX_IMAGE_BYTES + 1)
                _add_one(training_set, name, data, "", result, earlier)
        except UploadError as exc:
            result.rejected.append((name, str(exc)))
    return result


def _add_one(
    training_set: TrainingSet, name: str, data: bytes, caption: str, result: UploadResult, earlier: list[TrainingImage]
) -> None:
    if not storable([name, caption]):
        result.rejected.append((name, "its name or caption holds characters that cannot be stored"))
        return
    try:
        image, extension = _checked_image(data)
    except UploadError as exc:
        result.rejected.append((name, str(exc)))
        return
    row = TrainingImage(
        training_set=training_set,
        original_name=PurePosixPath(name).name[:200],
        caption=caption.strip(),
        width=image.width,
        height=image.height,
        hashes=image_hashes(image),
    )
    row.similar = similar_to(row, earlier)
    row.file.save(f"{uuid.uuid4().hex}.{extension}", ContentFile(data), save=True)
    result.added.append(row)
    earlier.append(row)


def _checked_image(data: bytes) -> tuple[Image.Image, str]:
    image, extension = read_image(data, max_bytes=MAX_IMAGE_BYTES, max_pixels=MAX_PIXELS)
    if min(image.width, image.height) < MIN_UPLOAD_SIDE:
        raise UploadError(
            f"{image.width}×{image.height} px is too small to learn from; at least {MIN_UPLOAD_SIDE} px a side"
        )
    return image, extension


@dataclass
class _Entry:
    """One file of a zip: an image with its caption, or what the zip holds that is refused, and why."""

    name: str
    data: bytes = b""
    caption: str = ""
    refused: str = ""


def _zip_entries(upload: IO[bytes], *, size: int | None) -> Iterator[_Entry]:
    if size is not None and size > MAX_ZIP_BYTES:
        raise UploadError(f"the zip is over {_bytes(MAX_ZIP_BYTES)}")
    misnamed: set[str] = set()
    try:
        archive = zipfile.ZipFile(upload)
    except UnicodeDecodeError:  # a name that is not UTF-8 though its entry says it is
        archive, misnamed = _without_false_utf8_flags(upload)
    except zipfile.BadZipFile:
        raise UploadError("not a readable zip") from None
    with archive:
        for name in sorted(misnamed):
            yield _Entry(name, refused="its name is not UTF-8, though the zip says it is; skipped")
        entries = [
            e for e in archive.infolist() if not e.is_dir() and not _is_junk(e.filename) and e.filename not in misnamed
        ]
        if len(entries) > MAX_ZIP_ENTRIES:
            raise UploadError(f"the zip holds {len(entries)} files; the limit is {MAX_ZIP_ENTRIES}")
        captions: dict[str, str | UploadError] = {}
        for e in entries:
            if e.filename.lower().endswith(".txt"):
                try:
                    text: str | UploadError = _read(archive, e, MAX_CAPTION_BYTES).decode("utf-8", "replace")
                except UploadError as exc:  # that image is refused, not the whole zip
                    text = exc
                captions[_stem(e.filename)] = text
        images = {_stem(e.filename) for e in entries if not e.filename.lower().endswith(".txt")}
        for e in entries:
            if e.filename.lower().endswith(".txt") and _stem(e.filename) not in images:
                yield _Entry(e.filename, refused="a caption with no image of the same name beside it; skipped")
        total = 0
        for entry in entries:
            if entry.filename.lower().endswith(".txt"):
                continue
            path = PurePosixPath(entry.filename)
            if path.is_absolute() or ".." in path.parts:
                # Nothing is written under the zip's names, but a zip made this way is suspect.
                yield _Entry(entry.filename, refused="a path that leaves the zip; skipped")
                continue
            try:
                data = _read(archive, entry, MAX_IMAGE_BYTES)
            except UploadError as exc:  # this entry is refused; the rest of the zip is still read
                yield _Entry(entry.filename, refused=str(exc))
                continue
            total += len(data)
            if total > MAX_ZIP_TOTAL:
                raise UploadError("the zip unpacks to more than the limit; split it")
            caption = captions.get(_stem(entry.filename), "")
            if isinstance(caption, UploadError):
                yield _Entry(entry.filename, refused=f"its caption {caption}")
            else:
                yield _Entry(entry.filename, data, caption)


# What a damaged member raises while it is decompressed: its stored, deflate, bzip2 or lzma stream.
UNREADABLE = (
    zipfile.BadZipFile,
    RuntimeError,
    NotImplementedError,
    EOFError,
    OSError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
)


def _without_false_utf8_flags(upload: IO[bytes]) -> tuple[zipfile.ZipFile, set[str]]:
    """The zip read with the UTF-8 flag cleared on the entries whose names are not UTF-8 (Python's
    zipfile refuses the whole archive over one), and those entries' names as then read."""
    upload.seek(0, 2)
    end = upload.tell()
    upload.seek(max(0, end - 65557))
    tail = upload.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        raise UploadError("not a readable zip")
    size, offset = struct.unpack("<II", tail[at + 12 : at + 20])
    upload.seek(offset)
    directory = bytearray(upload.read(size))
    flagged: list[bytes] = []
    pos = 0
    while directory[pos : pos + 4] == b"PK\x01\x02":
        (flags,) = struct.unpack("<H", directory[pos + 8 : pos + 10])
        name_len, extra_len, comment_len = struct.unpack("<HHH", directory[pos + 28 : pos + 34])
        name = bytes(directory[pos + 46 : pos + 46 + name_len])
        if flags & 0x800 and not _is_utf8(name):
            directory[pos + 8 : pos + 10] = struct.pack("<H", flags & ~0x800)
            flagged.append(name)
        pos += 46 + name_len + extra_len + comment_len
    try:
        archive = zipfile.ZipFile(_Overlay(upload, offset, bytes(directory)))
    except (zipfile.BadZipFile, UnicodeDecodeError):
        raise UploadError("not a readable zip") from None
    return archive, {name.decode("cp437") for name in flagged}


def _is_utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _Overlay(io.RawIOBase):
    """A file read as it is, but for `patch` in place of its bytes at `offset`."""

    def __init__(self, file: IO[bytes], offset: int, patch: bytes) -> None:
        self.file, self.offset, self.patch = file, offset, patch
        self.position = 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seek(self, position: int, whence: int = 0) -> int:
        self.position = self.file.seek(position, whence)
        return self.position

    def tell(self) -> int:
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        self.file.seek(self.position)
        data = bytearray(self.file.read() if size is None or size < 0 else self.file.read(size))
        start, end = self.position, self.position + len(data)
        low, high = max(start, self.offset), min(end, self.offset + len(self.patch))
        if low < high:
            data[low - start : high - start] = self.patch[low - self.offset : high - self.offset]
        self.position = end
        return bytes(data)


def _stem(name: str) -> str:
    """A zip entry's name without its extension: an image and its caption share it."""
    return PurePosixPath(name).with_suffix("").as_posix()


def _is_junk(name: str) -> bool:
    """Finder and editor leftovers (__MACOSX/, .DS_Store, ._x.png)."""
    parts = PurePosixPath(name).parts
    return any(part == "__MACOSX" or (part.startswith(".") and part != "..") for part in parts)


def _read(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, limit: int) -> bytes:
    """An entry's bytes, stopping at `limit` whatever its header claims (zip bombs lie)."""
    if entry.compress_size and entry.file_size / entry.compress_size > MAX_ZIP_RATIO:
        raise UploadError(f"{entry.filename} is compressed {entry.file_size // entry.compress_size}:1 (a zip bomb?)")
    try:
        with archive.open(entry) as member:
            data = member.read(limit + 1)
    except UNREADABLE as exc:
        raise UploadError(f"{entry.filename} cannot be read ({exc.__class__.__name__}: {exc})") from None
    if len(data) > limit:
        raise UploadError(f"{entry.filename} is over {_bytes(limit)}")
    return data


# --- perceptual hashes


def dhash(image: Image.Image, size: int = 8) -> str:
    """64-bit difference hash: survives resizing and recompression, not a different picture."""
    grey = image.convert("L").resize((size + 1, size), Image.Resampling.LANCZOS)
    pixels = list(grey.getdata())
    bits = 0
    for row in range(size):
        for col in range(size):
            left, right = pixels[row * (size + 1) + col], pixels[row * (size + 1) + col + 1]
            bits = (bits << 1) | (left > right)
    return f"{bits:016x}"


def image_hashes(image: Image.Image) -> dict[str, object]:
    """The image's hash and its crops' (centre and corners), to catch crops of one picture, each with
    its colours (a 4×4 thumbnail): the hash is of the greyscale, where a glyph recoloured from blue to
    orange looks the same, and a brand kit is full of recolours that are not duplicates."""
    w, h = image.size
    boxes = [(0.1, 0.1, 0.9, 0.9), (0.2, 0.2, 0.8, 0.8), (0, 0, 0.75, 0.75), (0.25, 0, 1, 0.75)]
    boxes += [(0, 0.25, 0.75, 1), (0.25, 0.25, 1, 1)]
    crops = [image.crop((round(a * w), round(b * h), round(c * w), round(d * h))) for a, b, c, d in boxes]
    return {
        "full": dhash(image),
        "crops": [dhash(crop) for crop in crops],
        "colours": colour_print(image),
        "crop_colours": [colour_print(crop) for crop in crops],
    }


def colour_print(image: Image.Image) -> list[int]:
    """The image at 4×4 px in RGB, over white where it is transparent: 48 numbers."""
    rgba = image.convert("RGBA")
    flat = Image.new("RGBA", rgba.size, "white")
    flat.alpha_composite(rgba)
    return list(flat.convert("RGB").resize((4, 4), Image.Resampling.BOX).tobytes())


# Two colour prints this far apart (the largest difference of one number, 0-255) are different
# pictures even when their greyscale hashes match: a recolour moves the glyph's cells by far more,
# a JPEG re-save or a resize by a few levels.
COLOUR_DISTANCE = 24


def same_colours(a: object, b: object) -> bool:
    """Whether two colour prints match; True when either is missing (images hashed before they were
    kept, judged on the greyscale hash alone as before)."""
    if not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b):
        return True
    return max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0) <= COLOUR_DISTANCE


def distance(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


# --- the validation report (the brief's "Training Data Quality & Volume" checklist)

# Recommended counts per asset type (brief: "Training Data Per Asset Type"); minimum, good from, up to.
COUNTS = {
    "icon": (20, 40, 60),
    "product-illustration": (15, 30, 50),
    "logo-illustration": (15, 25, 40),
    "premium-illustration": (25, 50, 80),
}
DEFAULT_COUNTS = (15, 30, 50)
MIN_CAPTION_WORDS = 6
DUPLICATE_DISTANCE = 6
OUTLINE_TERMS = {"outline", "line art", "stroke", "linework"}
# Words designers use for one idea; a set should settle on one of each group.
SYNONYMS = [
    {"flat", "minimal", "minimalist", "simple"},
    {"icon", "glyph", "pictogram", "symbol"},
    {"illustration", "drawing", "artwork", "graphic"},
    {"background", "backdrop"},
    OUTLINE_TERMS,
    {"gradient", "gradients", "ombre"},
]
# Words that pull opposite ways: a caption using one while the asset type's template (which every
# prompt carries, in training and in the studio) uses the other tells the model both at once.
OPPOSITES = [
    (OUTLINE_TERMS, {"solid", "filled"}),
    ({"flat"}, {"gradient", "gradients", "shaded", "3d"}),
    ({"monochrome"}, {"colorful", "colourful", "multicolor"}),
]


@dataclass
class Finding:
    level: str  # "error", "warning" or "info"
    message: str
    images: list[int] = field(default_factory=list)


@dataclass
class Check:
    name: str
    weight: int
    score: float  # 0..1
    findings: list[Finding] = field(default_factory=list)


@dataclass
class Report:
    checks: list[Check]
    count: int

    @property
    def score(self) -> int:
        total = sum(c.weight for c in self.checks)
        return round(100 * sum(c.weight * c.score for c in self.checks) / total) if total else 0

    @property
    def errors(self) -> list[Finding]:
        return [f for c in self.checks for f in c.findings if f.level == "error"]


def report(training_set: TrainingSet) -> Report:
    images = list(training_set.images.filter(excluded=False))
    checks = [
        _check_count(training_set, len(images)),
        _check_resolution(images, *training_side(training_set)),
        _check_duplicates(images),
        _check_captions(images),
        _check_terminology(images, training_set.preset),
        _check_aspect(images),
    ]
    return Report(checks, len(images))


def _check_count(training_set: TrainingSet, n: int) -> Check:
    minimum, good, top = COUNTS.get(training_set.preset.slug, DEFAULT_COUNTS)
    check = Check("Number of images", 25, min(1.0, n / good))
    if n < minimum:
        check.findings.append(Finding("error", f"{n} images; {training_set.preset.name} needs at least {minimum}."))
    elif n < good:
        check.findings.append(Finding("warning", f"{n} images: enough to try; {good}–{top} give solid results."))
    elif n > 2 * top:
        check.findings.append(Finding("info", f"{n} images: more than needed; keep only the best {top}."))
    else:
        check.findings.append(Finding("info", f"{n} images: within the recommended {good}–{top}."))
    return check


def _check_resolution(images: list[TrainingImage], side: int, model: str) -> Check:
    """Images smaller than the size they train at (`side`, the largest of the family's models, named
    by `model`) are upscaled in training."""
    small = [img for img in images if min(img.width, img.height) < side]
    check = Check("Resolution", 20, 1 - len(small) / len(images) if images else 0.0)
    if small:
        where = f", the size {model} trains at" if model else ""
        check.findings.append(
            Finding(
                "warning",
                f"{len(small)} image(s) under {side} px on the short side{where} (they are upscaled in training).",
                [img.pk for img in small],
            )
        )
    return check


def similar_to(image: TrainingImage, others: Sequence[TrainingImage]) -> list[list[int | str]]:
    """[pk, why] for each of `others` that `image` nearly duplicates or is a crop of (or the other way)."""
    found: list[list[int | str]] = []
    for other in others:
        if why := _why_similar(image, other):
            found.append([other.pk, why])
    return found


def _why_similar(a: TrainingImage, b: TrainingImage) -> str:
    if distance(a.hashes["full"], b.hashes["full"]) <= DUPLICATE_DISTANCE and same_colours(
        a.hashes.get("colours"), b.hashes.get("colours")
    ):
        return "near-duplicates"
    if _is_crop(a, b) or _is_crop(b, a):
        return "one is a crop of the other"
    return ""


def _check_duplicates(images: list[TrainingImage]) -> Check:
    """From the pairs found at upload (`similar`), among the images the set includes."""
    by_pk = {img.pk: img for img in images}
    pairs = [(by_pk[pk], img, why) for img in images for pk, why in img.similar if pk in by_pk]
    flagged = {img.pk for a, b, _ in pairs for img in (a, b)}
    check = Check("Unique images", 20, 1 - len(flagged) / len(images) if images else 0.0)
    for a, b, why in pairs[:SHOWN_PAIRS]:
        check.findings.append(Finding("warning", f"{a.original_name} and {b.original_name}: {why}.", [a.pk, b.pk]))
    if len(pairs) > SHOWN_PAIRS:
        rest = pairs[SHOWN_PAIRS:]
        marked = sorted({img.pk for a, b, _ in rest for img in (a, b)})
        check.findings.append(Finding("warning", f"And {len(rest)} more such pairs (marked on the images).", marked))
    return check


SHOWN_PAIRS = 50  # pairs named one by one in the report; the rest are counted (and marked on the tiles)


def _is_crop(small: TrainingImage, large: TrainingImage) -> bool:
    crops = large.hashes.get("crops", [])
    colours = large.hashes.get("crop_colours") or [None] * len(crops)
    return any(
        distance(small.hashes["full"], crop) <= DUPLICATE_DISTANCE and same_colours(small.hashes.get("colours"), colour)
        for crop, colour in zip(crops, colours, strict=False)
    )


def _words(caption: str) -> list[str]:
    return re.findall(r"[a-z]+(?:[- ]art)?", caption.lower())


def _check_captions(images: list[TrainingImage]) -> Check:
    missing = [img for img in images if not img.caption.strip()]
    short = [img for img in images if img.caption.strip() and len(_words(img.caption)) < MIN_CAPTION_WORDS]
    check = Check("Captions", 20, 1 - (len(missing) + 0.5 * len(short)) / len(images) if images else 0.0)
    if missing:
        check.findings.append(Finding("error", f"{len(missing)} image(s) have no caption.", [i.pk for i in missing]))
    if short:
        check.findings.append(
            Finding(
                "warning",
                f"{len(short)} caption(s) under {MIN_CAPTION_WORDS} words: say subject, style, colours, background.",
                [i.pk for i in short],
            )
        )
    if unread := [img for img in images if img.needs_review]:
        check.findings.append(
            Finding(
                "warning",
                f"{len(unread)} caption(s) written by the captioner and not reviewed yet: read each, then edit or "
                "approve it.",
                [i.pk for i in unread],
            )
        )
    return check


def _check_terminology(images: list[TrainingImage], preset: AssetPreset) -> Check:
    text = [_spaced(img.caption) for img in images]
    check = Check("Consistent terms", 10, 1.0)
    mixed = 0
    for group in SYNONYMS:
        used = Counter({term: sum(f" {term} " in t for t in text) for term in group})
        used = +used  # drop the unused
        if len(used) > 1:
            mixed += 1
            terms = " vs ".join(f"“{term}” ({n})" for term, n in used.most_common())
            check.findings.append(Finding("warning", f"Captions mix {terms} for one idea; pick one."))
    template = _spaced(preset.prompt_template.replace("{subject}", " "))
    for one, other in OPPOSITES:
        for captions_say, template_says in ((one, other), (other, one)):
            said = [term for term in template_says if f" {term} " in template]
            counts = Counter({term: sum(f" {term} " in t for t in text) for term in captions_say})
            if said and +counts:
                mixed += 1
                term, n = counts.most_common(1)[0]
                check.findings.append(
                    Finding(
                        "warning",
                        f"{n} caption(s) say “{term}” where the {preset.name} template, which every prompt "
                        f"carries in training and in the studio, says “{said[0]}”: the model is told both. "
                        "Word the captions as the template does, or change the template.",
                    )
                )
    check.score = max(0.0, 1 - 0.34 * mixed)
    return check


def _spaced(caption: str) -> str:
    return " " + " ".join(_words(caption)) + " "


def _check_aspect(images: list[TrainingImage]) -> Check:
    ratios = Counter(_bucket(img.width, img.height) for img in images)
    extreme = [img for img in images if max(img.width, img.height) / min(img.width, img.height) > 2.5]
    check = Check("Aspect ratios", 5, 1 - len(extreme) / len(images) if images else 0.0)
    if ratios:
        spread = ", ".join(f"{ratio} ({n})" for ratio, n in ratios.most_common())
        check.findings.append(Finding("info", f"Aspect ratios: {spread}. Training groups images by ratio."))
    if extreme:
        check.findings.append(
            Finding("warning", f"{len(extreme)} image(s) wider than 2.5:1 lose detail.", [i.pk for i in extreme])
        )
    return check


BUCKETS = {"1:1": 1.0, "4:3": 4 / 3, "3:4": 3 / 4, "16:9": 16 / 9, "9:16": 9 / 16}


def _bucket(width: int, height: int) -> str:
    ratio = width / height
    return min(BUCKETS, key=lambda name: abs(BUCKETS[name] - ratio))


def content_hash(images: list[TrainingImage]) -> str:
    """What a run trained on: each image's file and caption, in order."""
    import hashlib

    digest = hashlib.sha256()
    for img in images:
        digest.update(f"{img.file.name}\n{img.caption}\n".encode())
    return digest.hexdigest()
