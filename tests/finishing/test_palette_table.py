"""The palette's colour answers: the lookup table on disk and the memo used until it is built give the
same nearest colour, score and correction, the table is built once, atomically, and a broken one is
built again. Tables here cover the first 2**16 packed colours (blue 0) instead of all 2**24, which
takes a minute."""

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.finishing import colours, palette, table
from generation.finishing.plan import Palette

BRAND = Palette(("#0f6cbd", "#107c10", "#f7630c", "#8764b8"), "#f6f7f9", 10.0)
# Colours with no blue (packed codes under 2**16), on and off a palette of such colours.
NO_BLUE = Palette(("#ff0000", "#00a000", "#202000"), "#f0f000", 12.0)


@pytest.fixture
def small_tables(monkeypatch, tmp_path, settings):
    monkeypatch.setattr(table, "COLOURS", 1 << 16)
    monkeypatch.setattr(table, "CHUNK", 1 << 14)
    settings.STUDIO_PALETTE_TABLES_DIR = tmp_path
    table.judged.cache_clear()
    yield tmp_path
    table.judged.cache_clear()


def no_blue_image() -> Image.Image:
    rng = np.random.default_rng(3)
    base = np.array([[255, 0, 0], [0, 160, 0], [32, 32, 0], [240, 240, 0]], dtype=np.int16)
    pixels = base[rng.integers(0, 4, 64 * 64)] + rng.integers(-30, 31, (64 * 64, 3))
    pixels[:, 2] = 0
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8).reshape(64, 64, 3))


def test_table_entries_give_the_memos_answers_for_random_colours() -> None:
    values = np.unique(np.random.default_rng(1).integers(0, 1 << 24, 3000).astype(np.uint32))
    memo = table.Judged(BRAND, None)
    nearest, within = memo.judge(values)
    corrected = memo.correct(values)
    entries = np.concatenate([table.entries(BRAND, int(v), int(v) + 1) for v in values[:200]])
    assert np.array_equal(entries & table.RGB, corrected[:200])
    assert np.array_equal((entries & table.WITHIN) != 0, within[:200])
    assert np.array_equal(entries >> table.NEAREST_SHIFT, nearest[:200])
    assert within.any() and not within.all()


def test_the_memo_answers_colours_it_met_before_the_same_way() -> None:
    memo = table.Judged(BRAND, None)
    first = np.unique(np.random.default_rng(5).integers(0, 1 << 24, 500).astype(np.uint32))
    second = np.union1d(first[::2], np.unique(np.random.default_rng(6).integers(0, 1 << 24, 500)).astype(np.uint32))
    answers = dict(zip(first.tolist(), memo.correct(first).tolist(), strict=True))
    again = dict(zip(second.tolist(), memo.correct(second).tolist(), strict=True))
    assert all(again[key] == answers[key] for key in first[::2].tolist())
    assert memo.keys.size == np.union1d(first, second).size and np.all(np.diff(memo.keys.astype(np.int64)) > 0)


def test_a_built_table_is_used_and_changes_no_answer(small_tables) -> None:
    image = no_blue_image()
    before = palette.compliance(image, NO_BLUE)  # the memo, and the table's build starts
    corrected = palette.correct(image, NO_BLUE)
    assert table.wait_for_builds(60)
    built = small_tables / table.table_name(NO_BLUE)
    assert built.is_file() and not list(small_tables.glob("*.part"))
    table.judged.cache_clear()
    judged = table.judged(NO_BLUE)
    assert palette.compliance(image, NO_BLUE) == before and judged.table is not None
    assert np.array_equal(np.asarray(palette.correct(image, NO_BLUE)), np.asarray(corrected))


def test_an_edited_palette_gets_a_table_of_its_own() -> None:
    wider = Palette(NO_BLUE.colours, NO_BLUE.background, 14.0)
    reordered = Palette(tuple(reversed(NO_BLUE.colours)), NO_BLUE.background, 12.0)
    names = {table.table_name(p) for p in (NO_BLUE, wider, reordered)}
    assert len(names) == 3 and table.table_name(Palette(NO_BLUE.colours, "#F0F000", 12.0)) in names


def test_a_table_of_the_wrong_shape_is_built_again(small_tables) -> None:
    path = small_tables / table.table_name(NO_BLUE)
    np.save(path, np.zeros(10, dtype="<u4"))
    assert table.judged(NO_BLUE)._table() is None  # not used, and rebuilt in the background
    assert table.wait_for_builds(60) and np.load(path).shape == (1 << 16,)
    table.judged.cache_clear()
    assert table.judged(NO_BLUE)._table() is not None


def test_a_second_builder_leaves_the_table_to_the_one_holding_the_lock(small_tables) -> None:
    path = small_tables / table.table_name(NO_BLUE)
    started, release = threading.Event(), threading.Event()
    original = table.entries

    def slow(palette, start, stop):
        started.set()
        release.wait(10)
        return original(palette, start, stop)

    table.entries = slow
    try:
        first = threading.Thread(target=table.build, args=(NO_BLUE, path))
        first.start()
        started.wait(10)
        assert table.build(NO_BLUE, path) is False and not path.exists()
        release.set()
        first.join(60)
    finally:
        table.entries = original
    assert path.is_file() and np.load(path).shape == (1 << 16,)


def test_delta_e_split_over_threads_equals_one_call() -> None:
    lab = colours.to_lab(np.random.default_rng(0).integers(0, 256, (30_000, 3)).astype(np.uint8))
    refs = colours.hex_lab(colours.references(BRAND))
    split = colours.delta_e(lab[:, None, :], refs[None])
    with colours.serial():
        whole = colours.delta_e(lab[:, None, :], refs[None])
    assert split.shape == (30_000, 5) and np.array_equal(split, whole)


@pytest.mark.django_db
def test_a_starting_worker_loads_the_asset_types_upscalers_and_builds_their_palette_tables(small_tables) -> None:
    from generation.finishing import upscale
    from generation.finishing.planner import palette_of
    from generation.models import AssetPreset, BrandKit
    from generation.worker.finish import prepare_finishing

    icon = AssetPreset.objects.get(slug="icon")
    kit = icon.kit
    kit.palette, kit.background_colour, kit.palette_tolerance = list(NO_BLUE.colours), NO_BLUE.background, 12.0
    kit.save()
    BrandKit.objects.exclude(pk=kit.pk).update(palette=[])
    upscale.clear_cache()
    prepare_finishing()
    assert [Path(path).name for path, _, _ in upscale._cache] == ["demo-icons-4x.safetensors"]
    assert table.wait_for_builds(60)
    assert [path.name for path in small_tables.glob("*.npy")] == [table.table_name(palette_of(icon))]


def test_a_build_killed_midway_leaves_nothing_the_next_build_does_not_clear(small_tables) -> None:
    path = small_tables / table.table_name(NO_BLUE)
    leftover = small_tables / f"{path.stem}.abc123.part"
    leftover.write_bytes(b"half a table")
    assert table.build(NO_BLUE, path)
    assert path.is_file() and not leftover.exists()
