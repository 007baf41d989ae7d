"""The IPTC digital source type in XMP, for tools that read XMP but not C2PA: written into a PNG
(an iTXt chunk before the pixels), a WebP (an XMP chunk; a simple WebP becomes an extended one)
or an SVG (a metadata element), chunk by chunk, without decoding or re-encoding any pixel."""

from __future__ import annotations

import re
import struct
import zlib
from tempfile import SpooledTemporaryFile
from typing import IO
from xml.sax.saxutils import escape

IPTC_SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
SPOOL = 16 * 2**20  # bytes kept in memory before a file being credentialed spills to disk
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KEYWORD = b"XML:com.adobe.xmp"
WEBP_XMP_FLAG, WEBP_ALPHA_FLAG = 0x04, 0x10


class NotRewritable(ValueError):
    """The stored file is not the PNG, WebP or SVG its field says."""


def packet(source_type: str, *, tool: str = "Brand Studio") -> bytes:
    """An XMP packet naming the IPTC digital source type (e.g. trainedAlgorithmicMedia) and the tool."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        f"<Iptc4xmpExt:DigitalSourceType>{escape(IPTC_SOURCE_TYPES + source_type)}</Iptc4xmpExt:DigitalSourceType>"
        f"<xmp:CreatorTool>{escape(tool)}</xmp:CreatorTool>"
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="r"?>'
    ).encode()


def with_xmp(source: IO[bytes], mime: str, xmp: bytes) -> IO[bytes]:
    """A copy of `source` carrying `xmp`, rewound (in memory, or on disk past SPOOL bytes)."""
    out = spooled()
    writers = {"image/png": _png, "image/webp": _webp, "image/svg+xml": _svg}
    writers[mime](source, out, xmp)
    out.seek(0)
    return out


def spooled() -> IO[bytes]:
    """An empty file in memory that moves to disk past SPOOL bytes: the caller (a response) closes it."""
    return SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115


def _png(source: IO[bytes], out: IO[bytes], xmp: bytes) -> None:
    if source.read(8) != PNG_SIGNATURE:
        raise NotRewritable("not a PNG")
    out.write(PNG_SIGNATURE)
    written = False
    while header := source.read(8):
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IDAT" and not written:  # XMP goes before the pixels, where readers look first
            out.write(_png_chunk(b"iTXt", PNG_KEYWORD + b"\x00\x00\x00\x00\x00" + xmp))
            written = True
        out.write(header)
        _copy(source, out, length + 4)  # the data and its CRC


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _webp(source: IO[bytes], out: IO[bytes], xmp: bytes) -> None:
    riff, _, webp = struct.unpack("<4sI4s", source.read(12))
    if riff != b"RIFF" or webp != b"WEBP":
        raise NotRewritable("not a WebP")
    kind, size = struct.unpack("<4sI", source.read(8))
    first = source.read(size + size % 2)
    if kind == b"VP8X":
        head = bytes([first[0] | WEBP_XMP_FLAG]) + first[1:]
        chunks = [_webp_chunk(b"VP8X", head)]
    else:  # a simple WebP: an extended header first, then the image chunk as it was
        chunks = [_webp_chunk(b"VP8X", _extended_header(kind, first)), _webp_chunk(kind, first[:size])]
    body_size = 4 + sum(map(len, chunks)) + _remaining(source) + len(_webp_chunk(b"XMP ", xmp))
    out.write(struct.pack("<4sI4s", b"RIFF", body_size, b"WEBP") + b"".join(chunks))
    _copy(source, out, None)
    out.write(_webp_chunk(b"XMP ", xmp))


def _webp_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack("<4sI", kind, len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def _extended_header(kind: bytes, data: bytes) -> bytes:
    """The VP8X payload for a simple WebP: flags, then the canvas size less one (24 bits each)."""
    if kind == b"VP8L":  # lossless: 14-bit sizes and the alpha bit after the 0x2f signature
        bits = int.from_bytes(data[1:5], "little")
        width, height, alpha = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bits >> 28 & 1
    elif kind == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code; no alpha
        width, height = (int.from_bytes(data[6:8], "little") & 0x3FFF), (int.from_bytes(data[8:10], "little") & 0x3FFF)
        alpha = 0
    else:
        raise NotRewritable(f"an unknown WebP chunk {kind!r}")
    flags = WEBP_XMP_FLAG | (WEBP_ALPHA_FLAG if alpha else 0)
    return bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")


def _svg(source: IO[bytes], out: IO[bytes], xmp: bytes) -> None:
    text = source.read().decode()
    opening = re.search(r"<svg\b[^>]*>", text)
    if opening is None or opening.group().endswith("/>"):
        raise NotRewritable("not an SVG with content")
    # XMP inside <metadata>, as the SVG specification suggests; the packet's own processing
    # instructions are dropped (not allowed inside an element in every reader).
    description = re.sub(rb"<\?xpacket[^>]*\?>", b"", xmp).decode()
    at = opening.end()
    out.write((text[:at] + f"<metadata>{description}</metadata>" + text[at:]).encode())


def _remaining(source: IO[bytes]) -> int:
    here = source.tell()
    end = source.seek(0, 2)
    source.seek(here)
    return end - here


def _copy(source: IO[bytes], out: IO[bytes], length: int | None, chunk: int = 256 * 1024) -> None:
    while length is None or length > 0:
        data = source.read(chunk if length is None else min(chunk, length))
        if not data:
            return
        out.write(data)
        if length is not None:
            length -= len(data)
