"""The demo kit v2: Fluent filled glyphs from the pinned npm package, rendered with resvg, and the
judge that tells which glyph a drawing is."""

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from generation.devtools import glyphs
from generation.devtools.demo_kit import (
    GLYPH_SUBJECTS,
    PALETTE,
    card_references,
    glyph_kit,
    glyph_references,
    judge_glyph,
    read_kit_card,
    without_specks,
)
from tests.icons import needs_icons


@needs_icons
def test_every_render_of_the_kit_is_judged_as_its_own_subject_and_colour() -> None:
    subjects = list(GLYPH_SUBJECTS)
    references = glyph_references(subjects)
    kit = glyph_kit(subjects, 1, seed=7)
    verdicts = [(item.shape, judge_glyph(item.image, references).nearest) for item in kit]
    wrong = [(asked, nearest) for asked, nearest in verdicts if nearest != asked]
    assert len(kit) == len(subjects) * len(PALETTE)
    assert len(wrong) <= len(kit) // 100, wrong
    assert all(judge_glyph(item.image, references).colour == item.colour for item in kit)


@needs_icons
def test_a_drawing_is_judged_by_its_glyph_whatever_its_size_and_place() -> None:
    references = glyph_references(["shield", "trophy", "person"])
    alpha = glyphs.coverage("shield")
    assert alpha is not None
    small = glyphs.paint(alpha, PALETTE["green"], (246, 247, 249), size=64)
    large = glyphs.paint(alpha, PALETTE["green"], (246, 247, 249), size=512)
    assert judge_glyph(small, references).nearest == judge_glyph(large, references).nearest == "shield"


def test_specks_at_the_edge_and_crumbs_do_not_move_the_bounding_box() -> None:
    mask = np.zeros((64, 64), dtype=bool)
    mask[20:44, 18:46] = True  # the glyph
    mask[0:2, 0:2] = True  # a corner artefact
    mask[60, 30] = True  # a crumb
    mask[8:11, 30:33] = True  # a small part inside: kept (a sun's ray)
    kept = without_specks(mask)
    assert not kept[0:2, 0:2].any() and not kept[60, 30]
    assert kept[20:44, 18:46].all() and kept[8:11, 30:33].all()


def test_a_missing_icon_package_says_how_to_install_it(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STUDIO_FLUENT_ICONS", str(tmp_path / "absent"))
    with pytest.raises(glyphs.GlyphError, match=r"npm ci --prefix demo/kit"):
        glyph_kit(["person"], 1)


@pytest.mark.django_db
def test_training_the_demo_model_without_the_icon_package_fails_with_the_install_command(
    monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STUDIO_FLUENT_ICONS", str(tmp_path / "absent"))
    with pytest.raises(CommandError, match=r"not installed .*npm ci --prefix demo/kit"):
        call_command("train_demo_model", out=tmp_path / "model", checkpoints=tmp_path / "ck", subjects=2)


def test_a_subject_with_no_glyph_fails_the_build_naming_it() -> None:
    with pytest.raises(glyphs.GlyphError, match=r"'unicorn'"):
        glyph_kit(["person", "unicorn"], 1)


@needs_icons
def test_an_svg_that_does_not_render_is_left_out_with_a_warning(monkeypatch, tmp_path: Path, caplog) -> None:
    package = tmp_path / "svg-icons"
    (package / "icons").mkdir(parents=True)
    shutil.copy(glyphs.svg_path("person"), package / "icons")
    (package / "icons" / "key_24_filled.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><path d='M0 0")
    monkeypatch.setenv("STUDIO_FLUENT_ICONS", str(package))
    glyphs._coverage.cache_clear()
    with caplog.at_level(logging.WARNING, logger="generation.devtools.glyphs"):
        kit = glyph_kit(["person", "key"], 1)
    assert {item.shape for item in kit} == {"person"}
    assert "Skipped key (filled): it does not render" in caplog.text


@needs_icons
def test_a_trained_models_card_carries_its_subjects_references_and_the_glyphs_license(tmp_path: Path) -> None:
    from generation.devtools.demo_model import write_kit_card

    write_kit_card(tmp_path, ["person", "shield"])
    card = read_kit_card(tmp_path)
    assert card is not None and list(card["subjects"]) == ["person", "shield"]
    assert card["package"] == "@fluentui/svg-icons@1.1.343"
    shipped = card_references(card)
    assert all((shipped[s] == glyph_references([s])[s]).all() for s in ("person", "shield"))
    assert "MIT License" in (tmp_path / "LICENSE-fluent-ui-system-icons.txt").read_text()
