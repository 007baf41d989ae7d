"""The one way a studio image's file leaves the studio: with the IPTC source type in XMP, and
signed with its C2PA manifest where the studio has a certificate. Pages, the API and zips all
serve through `credentialed`, so no download path can forget it."""

from __future__ import annotations

import logging
from typing import IO

import c2pa

from ..models import GeneratedImage
from .keys import signing_keys
from .manifest import SVG, sign, source_type
from .xmp import NotRewritable, packet, with_xmp

log = logging.getLogger(__name__)

PNG, WEBP = "image/png", "image/webp"


def credentialed(source: IO[bytes], image: GeneratedImage, mime: str) -> IO[bytes]:
    """`source` (one of `image`'s files, open) as it is served: a new file, rewound, and `source`
    closed; or `source` itself where nothing is added. An SVG is served as stored unless the
    studio signs: its XMP would be the only change, and tools that read XMP read rasters."""
    keys = signing_keys()
    if mime == SVG and keys is None:
        return source
    try:
        marked = with_xmp(source, mime, packet(source_type(image.job)))
    except NotRewritable as exc:  # a stored file that is not what its field says: served as it is
        log.warning("Image %s: its %s is %s; served without credentials", image.pk, mime, exc)
        source.seek(0)
        return source
    source.close()
    if keys is None:
        return marked
    try:
        signed = sign(marked, mime, image, keys)
    except c2pa.C2paError:
        # The download still works (with its XMP and watermark); the log says why it is unsigned.
        log.exception("Image %s: its %s could not be signed; served without a manifest", image.pk, mime)
        marked.seek(0)
        return marked
    marked.close()
    return signed


def signs_downloads() -> bool:
    """Whether downloads carry a manifest: they then go through the studio, never a blob URL."""
    return signing_keys() is not None
