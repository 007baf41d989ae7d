"""SVG: trace a flat image into paths in the palette's colours, and sanitise SVG text.

`sanitise` / `is_valid` are used by the web process too, so this module imports only the standard library
(and defusedxml when installed) at the top; `trace` imports numpy, vtracer and the palette helpers itself.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from generation.finishing.plan import Palette

if TYPE_CHECKING:
    from PIL import Image

try:
    from defusedxml import ElementTree as SafeET  # refuses DTDs, entities and external references
except ImportError:  # pragma: no cover - the pinned environment has it; the DOCTYPE check below still holds
    SafeET = None

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
MAX_CHARS = 10_000_000
MAX_DEPTH = 64
# Tracing time grows with pixels, not with detail: an icon upscaled past this has nothing that a trace at
# this size misses, and traces three to four times faster with a smaller file.
TRACE_MAX_SIDE = 2048

# vtracer settings for flat icons: exact colours (they are already snapped), stacked shapes (no gaps between
# neighbouring colours), splines for smooth outlines, speckles under 4 px dropped, 2 decimals per coordinate.
TRACE_SETTINGS = {
    "colormode": "color",
    "hierarchical": "stacked",
    "mode": "spline",
    "filter_speckle": 4,
    "color_precision": 8,
    "layer_difference": 8,
    "corner_threshold": 60,
    "length_threshold": 4.0,
    "max_iterations": 10,
    "splice_threshold": 45,
    "path_precision": 2,
}

ELEMENTS = {
    "svg", "g", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
    "title", "desc", "defs", "linearGradient", "radialGradient", "stop",
}  # fmt: skip
ATTRIBUTES = {
    "id", "class", "version", "width", "height", "viewBox", "preserveAspectRatio", "transform",
    "d", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "fx", "fy", "fr", "points",
    "fill", "fill-opacity", "fill-rule", "clip-rule", "opacity", "color", "visibility", "style",
    "stroke", "stroke-width", "stroke-opacity", "stroke-linecap", "stroke-linejoin", "stroke-miterlimit",
    "stroke-dasharray", "stroke-dashoffset", "vector-effect", "shape-rendering",
    "offset", "stop-color", "stop-opacity", "gradientUnits", "gradientTransform", "spreadMethod", "href",
}  # fmt: skip
TEXT_ELEMENTS = {"title", "desc"}
LOCAL_REF = re.compile(r"#[A-Za-z_][\w.:-]*")  # used with fullmatch, as LOCAL_URL
URL = re.compile(r"url\(\s*([^)]*?)\s*\)", re.IGNORECASE)
LOCAL_URL = re.compile(r"""(['"]?)#[A-Za-z_][\w.:-]*\1""")
FORBIDDEN_IN_VALUES = ("javascript:", "vbscript:", "data:", "expression(", "@import", "\\", "<")


# --- sanitising (web-safe)


def sanitise(text: str) -> str:
    """The SVG rebuilt from an allow-list of elements and attributes: no scripts, event handlers, external
    references or embedded documents survive. Raises ValueError saying why on anything that is not a
    well-formed SVG, or that declares a DTD or entities."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("Not an SVG: the text is empty.")
    if len(text) > MAX_CHARS:
        raise ValueError(f"Not accepted: the SVG is over {MAX_CHARS:,} characters.")
    if re.search(r"<!\s*(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise ValueError("Not accepted: an SVG may not declare a DTD or entities (<!DOCTYPE>, <!ENTITY>).")
    root = _parse(text)
    if _local(root.tag) != "svg" or _namespace(root.tag) not in {"", SVG_NS}:
        raise ValueError(f"Not an SVG: the root element is <{_local(root.tag)}>.")
    clean = _rebuild(root, 0)
    assert clean is not None  # the root is an svg element, which the allow-list keeps
    clean.set("xmlns", SVG_NS)
    return ET.tostring(clean, encoding="unicode")


def is_valid(text: str) -> bool:
    try:
        sanitise(text)
    except ValueError:
        return False
    return True


def _parse(text: str) -> ET.Element:
    try:
        if SafeET is not None:
            return SafeET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"Not well-formed XML: {exc}.") from exc
    except ValueError:
        raise
    except Exception as exc:  # defusedxml's DTDForbidden / EntitiesForbidden / ExternalReferenceForbidden
        raise ValueError(f"Not accepted: {exc}.") from exc


def _rebuild(element: ET.Element, depth: int) -> ET.Element | None:
    name = _local(element.tag) if isinstance(element.tag, str) else ""
    if name not in ELEMENTS or _namespace(element.tag) not in {"", SVG_NS}:
        return None  # script, foreignObject, image, use, style, other namespaces: dropped with their content
    if depth > MAX_DEPTH:
        raise ValueError(f"Not accepted: elements nested more than {MAX_DEPTH} deep.")
    clean = ET.Element(name)
    for key, value in element.attrib.items():
        attribute = _attribute_name(key)
        if attribute and _safe_value(attribute, value):
            clean.set(attribute, value)
    if name in TEXT_ELEMENTS and element.text:
        clean.text = element.text
    for child in element:
        rebuilt = _rebuild(child, depth + 1)
        if rebuilt is not None:
            clean.append(rebuilt)
    return clean


def _attribute_name(key: str) -> str | None:
    """The attribute's plain name if it is allowed; xlink:href is kept as SVG 2's href."""
    namespace, name = _namespace(key), _local(key)
    if namespace == XLINK_NS and name == "href":
        return "href"
    if namespace or name not in ATTRIBUTES:
        return None  # on* handlers are never in the allow-list
    return name


def _safe_value(attribute: str, value: str) -> bool:
    if attribute == "href":
        return bool(LOCAL_REF.fullmatch(value.strip()))
    lowered = value.lower()
    if any(bad in lowered for bad in FORBIDDEN_IN_VALUES):
        return False
    return all(LOCAL_URL.fullmatch(target) for target in URL.findall(value))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


# --- tracing (worker-only)


def trace(image: Image.Image, palette: Palette) -> str:
    """A sanitised SVG of the image in the palette's colours, on a transparent background.

    Colours are first snapped to the nearest palette colour (the background included); background and
    transparent pixels are left out. After tracing, every fill is rewritten to the exact palette hex.
    Images over TRACE_MAX_SIDE are traced at that size and the paths scaled back up.
    """
    import numpy as np
    import vtracer
    from PIL import Image as PILImage

    from generation.finishing.colours import colours_of, image_words, references
    from generation.finishing.palette import nearest_references

    width, height = image.size
    shrink = max(width, height) / TRACE_MAX_SIDE
    if shrink > 1:
        image = image.resize((max(1, round(width / shrink)), max(1, round(height / shrink))), PILImage.Resampling.BOX)
    names = [name.lower() for name in palette.colours]
    codes, alpha = image_words(image)
    # A palette PNG for vtracer: index 0 transparent (background, see-through pixels), 1.. the palette
    # colours. The same SVG as from RGBA, encoded in a seventh of the time (one byte a pixel).
    indices = np.zeros(codes.size, dtype=np.uint8)
    colours = [rgb for name in names for rgb in _hex_rgb(name)]
    if names and codes.size:
        refs = references(palette)  # the colours, then the background when it names one
        values, index = colours_of(codes)
        to_index = np.array([names.index(name) + 1 if name in names else 0 for name in refs], dtype=np.uint8)
        indices = to_index[nearest_references(values, palette)][index]
        if alpha is not None:
            indices[alpha < 128] = 0
    snapped = PILImage.frombytes("P", image.size, indices.tobytes())
    snapped.putpalette([0, 0, 0, *colours])
    png = io.BytesIO()
    snapped.save(png, "PNG", compress_level=1, transparency=0)
    traced = vtracer.convert_raw_image_to_svg(png.getvalue(), img_format="png", **TRACE_SETTINGS)
    return sanitise(_sized(_palette_fills(traced, names), (width, height), image.size))


def _sized(text: str, size: tuple[int, int], traced: tuple[int, int]) -> str:
    """vtracer's SVG with the image's width, height and viewBox (it writes no viewBox, which an SVG needs to
    scale when shown smaller), its paths scaled up when it traced a smaller copy."""
    width, height = size
    opening = f'<svg xmlns="{SVG_NS}" version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    if traced != size:
        scale = f"{width / traced[0]:.6g} {height / traced[1]:.6g}"
        opening += f'<g transform="scale({scale})">'
        text = text.replace("</svg>", "</g></svg>")
    return re.sub(r"<svg\b[^>]*>", opening, text, count=1)


def _palette_fills(text: str, names: list[str]) -> str:
    """Every fill rewritten to the nearest palette colour's exact hex (vtracer writes "#0F6CBD" and may
    average a cluster's colour)."""
    if not names:
        return text
    palette_rgb = [_hex_rgb(name) for name in names]

    def nearest(match: re.Match[str]) -> str:
        rgb = _hex_rgb(match.group(1))
        best = min(range(len(names)), key=lambda i: sum((a - b) ** 2 for a, b in zip(rgb, palette_rgb[i], strict=True)))
        return f'fill="{names[best]}"'

    return re.sub(r'fill="(#[0-9a-fA-F]{6})"', nearest, text)


def _hex_rgb(value: str) -> tuple[int, int, int]:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
