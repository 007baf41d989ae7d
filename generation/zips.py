"""Zip downloads streamed to the browser: memory stays at one chunk whatever the zip's size."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from django.db.models.fields.files import FieldFile

from .credentials.download import PNG, SVG, credentialed
from .models import BrandReference, GeneratedImage, InputImage
from .stored import MissingFile, opened

CHUNK = 256 * 1024


class _Pipe:
    """A write-only file whose contents are taken away as they come (zipfile writes here)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def zip_stream(
    images: Iterable[GeneratedImage], *, folder: Callable[[GeneratedImage], str] | None = None
) -> Iterator[bytes]:
    """Yield a zip of the images, each read from storage in chunks (`folder` sorts them into folders).

    Beside each PNG goes its traced SVG when the worker made one, under the PNG's name. PNGs are
    compressed already, so they are stored; SVGs are text, and deflate to a fraction. (The WebP
    stays a download of its own: the same pixels again would double every zip.) Each image's
    files carry their content credentials, as single downloads do; the inputs are the designers'.
    """
    pipe = _Pipe()
    names: set[str] = set()
    notices: dict[str, list[str]] = {}
    sketches: set[str] = set()  # the inputs the images' jobs started from
    references: set[str] = set()  # and the style references they followed
    masks: set[str] = set()  # and the masks they repainted
    brand: set[str] = set()  # and the asset type's brand references they followed
    missing: list[str] = []  # files gone from storage, listed in the zip instead
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for image in images:
            name = _unique(f"{folder(image)}/{image.download_name}" if folder else image.download_name, names)
            if notice := image.license_restriction:
                notices.setdefault(notice, []).append(name)
            if sketch := image.job.params.get("sketch"):
                sketches.add(sketch["input"])
            references.update(r["input"] for r in image.job.params.get("references", []) if "input" in r)
            brand.update(r["brand"] for r in image.job.params.get("references", []) if "brand" in r)
            if inpaint := image.job.params.get("inpaint"):
                masks.add(inpaint["mask"])
            yield from _member(archive, pipe, image.file, name, missing, of=(image, PNG))
            if image.svg:
                svg_name = _unique(name.removesuffix(".png") + ".svg", names)
                yield from _member(archive, pipe, image.svg, svg_name, missing, deflate=True, of=(image, SVG))
        # What the jobs started from goes with them (inputs/), once each however many images used it.
        for kind, keys in (("sketch", sketches), ("reference", references), ("mask", masks)):
            for row in InputImage.objects.filter(pk__in=keys).order_by("created_at"):
                name = _unique(f"inputs/{kind}-{row.sha256[:12]}.png", names)
                yield from _member(archive, pipe, row.file, name, missing)
        for reference in BrandReference.objects.filter(pk__in=brand):
            name = _unique(f"inputs/brand-reference-{reference.pk}.png", names)
            yield from _member(archive, pipe, reference.file, name, missing)
        if notices:  # images from models that do not allow production use say so in the zip
            archive.writestr("LICENSE-NOTICES.txt", _notice_text(notices))
        if missing:
            archive.writestr("MISSING-FILES.txt", _missing_text(missing))
    yield pipe.take()


def _member(
    archive: zipfile.ZipFile,
    pipe: _Pipe,
    file: FieldFile,
    name: str,
    missing: list[str],
    *,
    deflate: bool = False,
    of: tuple[GeneratedImage, str] | None = None,
) -> Iterator[bytes]:
    """One file into the zip, read in chunks; one gone from storage is left out and listed in `missing`
    (opened before its entry starts, so the zip stays whole). `of`: the image it is a file of, and
    its type: it goes in with its content credentials."""
    try:
        source: IO[bytes] = opened(file, name)
    except MissingFile:
        missing.append(name)
        return
    if of is not None:
        source = credentialed(source, *of)
    info = zipfile.ZipInfo(name)  # as archive.open(name) makes it, but deflated when asked
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with source, archive.open(info, mode="w", force_zip64=True) as member:
        while chunk := source.read(CHUNK):
            member.write(chunk)
            yield pipe.take()
    yield pipe.take()


def _notice_text(notices: dict[str, list[str]]) -> str:
    parts = [
        f"{notice}\n\nApplies to:\n" + "\n".join(f"  {name}" for name in names) for notice, names in notices.items()
    ]
    return "\n\n".join(parts) + "\n"


def _missing_text(missing: list[str]) -> str:
    listed = "\n".join(f"  {name}" for name in missing)
    return f"These files are missing from the studio's storage and are not in this zip:\n{listed}\n"


def _unique(name: str, taken: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}{dot}{ext}"
    taken.add(candidate)
    return candidate
