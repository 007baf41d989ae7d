"""Fluent UI System Icons as drawing material: find a glyph's SVG in the pinned npm package and
render it, in a brand colour on the kit's background, with resvg.

The package (`@fluentui/svg-icons`, MIT) is installed by `npm ci` in `demo/kit/`, as the Figma
plugin's packages are; nothing here downloads. `STUDIO_FLUENT_ICONS` points elsewhere.
"""

from __future__ import annotations

import io
import logging
import os
import random
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from PIL import Image

log = logging.getLogger(__name__)

PACKAGE = "@fluentui/svg-icons"
VERSION = "1.1.343"
GLYPH_SIZE = 24  # Fluent's 24 px master: the boldest drawing, made for small sizes
INSTALL_HINT = "install it with `npm ci --prefix demo/kit` (it is pinned in demo/kit/package.json)"


class GlyphError(Exception):
    """The icon package is missing, or a subject has no glyph in it."""


def package_dir() -> Path:
    override = os.environ.get("STUDIO_FLUENT_ICONS")
    if override:
        return Path(override)
    return Path(settings.BASE_DIR) / "demo" / "kit" / "node_modules" / PACKAGE


def icons_dir() -> Path:
    folder = package_dir() / "icons"
    if not folder.is_dir():
        where = package_dir()
        raise GlyphError(f"The Fluent icon package {PACKAGE} {VERSION} is not installed at {where}: {INSTALL_HINT}.")
    return folder


def svg_path(name: str, style: str = "filled") -> Path:
    path = icons_dir() / f"{name}_{GLYPH_SIZE}_{style}.svg"
    if not path.is_file():
        raise GlyphError(f"No {style} glyph named {name!r} in {PACKAGE} (looked for {path.name}).")
    return path


def license_text() -> str:
    """The package's license: its own file where it ships one, else MIT as its package.json states."""
    for name in ("LICENSE", "LICENSE.md", "LICENSE.txt"):
        path = package_dir() / name
        if path.is_file():
            return path.read_text()
    return MIT_LICENSE


def coverage(name: str, style: str = "filled", *, size: int = 256) -> np.ndarray | None:
    """The glyph's coverage (0..1) on a size x size canvas, or None (with a warning) when it does
    not render: one broken SVG skips a glyph, it does not stop a build."""
    try:
        return _coverage(str(svg_path(name, style)), size)
    except GlyphError:
        raise
    except Exception as exc:  # resvg raises plain exceptions for malformed SVG
        log.warning("Skipped %s (%s): it does not render: %s", name, style, exc)
        return None


@lru_cache(maxsize=4096)
def _coverage(path: str, size: int) -> np.ndarray:
    import resvg_py

    svg = Path(path).read_text()
    png = resvg_py.svg_to_bytes(svg_string=svg, width=size, height=size)
    alpha = np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA"), dtype=np.float32)[:, :, 3] / 255.0
    if alpha.max() <= 0:
        raise ValueError("it draws nothing")
    alpha.setflags(write=False)
    return alpha


def paint(
    alpha: np.ndarray,
    colour: tuple[int, int, int],
    background: tuple[int, int, int],
    *,
    size: int,
    rng: random.Random | None = None,
) -> Image.Image:
    """The glyph in `colour` on `background`, shrunk to `size`; with `rng`, a small random scale
    and shift (the kit's augmentation), without it centred at its designed size."""
    scale, dx, dy = (rng.uniform(0.85, 1.12), rng.uniform(-0.06, 0.06), rng.uniform(-0.06, 0.06)) if rng else (1, 0, 0)
    big = alpha.shape[0]
    side = max(1, round(big * scale))
    mask = Image.fromarray((alpha * 255).astype(np.uint8)).resize((side, side), Image.Resampling.LANCZOS)
    canvas = Image.new("L", (big, big), 0)
    canvas.paste(mask, (round((big - side) / 2 + dx * big), round((big - side) / 2 + dy * big)))
    image = Image.composite(Image.new("RGB", (big, big), colour), Image.new("RGB", (big, big), background), canvas)
    return image.resize((size, size), Image.Resampling.LANCZOS)


MIT_LICENSE = """MIT License

Copyright (c) 2020 Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
