"""Tests that draw Fluent glyphs need the pinned icon package (`npm ci --prefix demo/kit`; the
README's test command installs it where npm is). CI sets STUDIO_REQUIRE_ICONS: fail, not skip."""

import os

import pytest

from generation.devtools import glyphs

INSTALLED = (glyphs.package_dir() / "icons").is_dir()
if not INSTALLED and os.environ.get("STUDIO_REQUIRE_ICONS"):
    raise RuntimeError(f"STUDIO_REQUIRE_ICONS is set but {glyphs.PACKAGE} is not installed: {glyphs.INSTALL_HINT}")
needs_icons = pytest.mark.skipif(not INSTALLED, reason=f"{glyphs.PACKAGE} is not installed ({glyphs.INSTALL_HINT})")
