"""What a worker knows about colours against one palette: per packed colour, its nearest reference,
whether it is on-brand and what correction makes of it. Worker-only.

ΔE2000 is most of finishing's cost, and every colour's answer is fixed by the palette, so it is worked
out once: for all 2**24 sRGB colours in a lookup table on disk (64 MB, built in the background the
first time a worker meets a palette, about a minute on one core, then memory-mapped and shared by the
worker's processes), and, until that table is ready, per colour as images bring them (a memo). Both
run the same arithmetic (`correction`), so their answers are identical.

A table entry is one little-endian uint32: the corrected colour (packed RGB) in bits 0-23, on-brand
in bit 24, the nearest reference's index in bits 25-30.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from generation.finishing.colours import hex_lab, hex_rgb, pack, references, serial, to_lab, unpack
from generation.finishing.correction import correct_colours, judge_lab
from generation.finishing.plan import Palette

log = logging.getLogger(__name__)

VERSION = 2  # part of the table's name: bump when the arithmetic changes
COLOURS = 1 << 24
CHUNK = 1 << 16  # colours per step of a build: bounds its memory to some tens of MB
RGB, WITHIN, NEAREST_SHIFT = 0xFFFFFF, 1 << 24, 25


class Judged:
    """One palette's answers for the colours of `values` (distinct packed colours, sorted)."""

    MEMO_LIMIT = 4_000_000  # colours the memo keeps (about 40 MB); past it, it starts again

    def __init__(self, palette: Palette, folder: Path | None) -> None:
        self.palette = palette
        self.tolerance = palette.tolerance
        names = references(palette)
        self.refs = hex_lab(names) if names else np.zeros((0, 3))
        self.refs_rgb = hex_rgb(names)
        self.path = folder / table_name(palette) if folder else None
        self.table: np.ndarray | None = None
        self._looked: float | None = None  # when the table was last looked for
        self.lock = threading.Lock()
        self._clear()

    def judge(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per colour: its nearest reference's index and whether it is within the tolerance of it."""
        if (table := self._table()) is not None:
            entries = table[values]
            return (entries >> NEAREST_SHIFT).astype(np.uint8), (entries & WITHIN) != 0
        with self.lock:
            at = self._add(values)
            return self.nearest[at], self.within[at]

    def correct(self, values: np.ndarray) -> np.ndarray:
        """Per colour: its corrected colour, packed RGB."""
        if (table := self._table()) is not None:
            return table[values] & RGB
        with self.lock:
            at = self._add(values)
            todo = at[~self.has_correction[at]]
            if todo.size:
                self.corrected[todo] = _corrected(
                    self.keys[todo], (self.refs_rgb, self.refs), self.tolerance, self.nearest[todo], self.within[todo]
                )
                self.has_correction[todo] = True
            return self.corrected[at]

    def ready(self) -> bool:
        """Whether the table is loaded; when it is missing, this starts its build."""
        self._looked = None
        return self._table() is not None

    # --- the table on disk

    def _table(self) -> np.ndarray | None:
        """The palette's table when it is on disk; else None, and its build started (once a minute at most)."""
        if self.table is not None or self.path is None:
            return self.table
        now = time.monotonic()
        if self._looked is not None and now - self._looked < 60:
            return None
        self._looked = now
        self.table = load(self.path)
        if self.table is None:
            build_in_background(self.palette, self.path)
        return self.table

    # --- the memo, until the table is ready

    def _clear(self) -> None:
        self.keys = np.zeros(0, dtype=np.uint32)
        self.nearest = np.zeros(0, dtype=np.uint8)
        self.within = np.zeros(0, dtype=bool)
        self.corrected = np.zeros(0, dtype=np.uint32)
        self.has_correction = np.zeros(0, dtype=bool)

    def _add(self, values: np.ndarray) -> np.ndarray:
        """Judge the colours of `values` not met yet, merge them in (keys kept sorted, searched with
        np.searchsorted: a 2**24 array would page-fault on every page a brand's colours touch), and
        return where each of `values` is."""
        at = np.searchsorted(self.keys, values)
        met = at < self.keys.size
        met[met] = self.keys[at[met]] == values[met]
        new = values[~met]
        if new.size:
            if self.keys.size + new.size > self.MEMO_LIMIT:
                self._clear()
                new = values
            nearest, within = judge_lab(to_lab(unpack(new)), self.refs, self.tolerance)
            where = np.searchsorted(self.keys, new)
            self.keys = np.insert(self.keys, where, new)
            self.nearest = np.insert(self.nearest, where, nearest)
            self.within = np.insert(self.within, where, within)
            self.corrected = np.insert(self.corrected, where, 0)
            self.has_correction = np.insert(self.has_correction, where, False)
            at = np.searchsorted(self.keys, values)
        return at


@functools.lru_cache(maxsize=4)  # a worker serves a brand or two
def judged(palette: Palette) -> Judged:
    return Judged(palette, _folder())


def _folder() -> Path | None:
    """Where tables live: STUDIO_PALETTE_TABLES_DIR (var/palette-tables); None when it is set empty, or
    outside Django (a script of the stage alone): the memo only."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        folder = settings.STUDIO_PALETTE_TABLES_DIR
    except (ImproperlyConfigured, AttributeError):
        return None
    return Path(folder) if folder else None


def table_name(palette: Palette) -> str:
    """The table's file name: a digest of what its answers depend on, so an edited palette gets a new one."""
    what = json.dumps([VERSION, references(palette), round(float(palette.tolerance), 6)])
    return f"palette-{hashlib.sha256(what.encode()).hexdigest()[:20]}.npy"


def _corrected(
    codes: np.ndarray, refs: tuple[np.ndarray, np.ndarray], tolerance: float, nearest: np.ndarray, within: np.ndarray
) -> np.ndarray:
    """The corrected colours of packed `codes`, packed: the arithmetic both the memo and the table run."""
    rgb = unpack(codes)
    fixed = correct_colours(rgb, to_lab(rgb), refs, tolerance, nearest, within)
    return pack(np.clip(np.rint(fixed), 0, 255).astype(np.uint8))


# --- building a table


def load(path: Path) -> np.ndarray | None:
    """The table at `path`, memory-mapped (the worker's processes share its pages); None when it is
    missing or not a whole table (then it is built again)."""
    try:
        table = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if table.shape != (COLOURS,) or table.dtype != np.dtype("<u4"):
        log.warning("Palette table %s is not a whole table; building it again", path.name)
        return None
    return table


def entries(palette: Palette, start: int, stop: int) -> np.ndarray:
    """The table's entries for the packed colours start..stop-1."""
    codes = np.arange(start, stop, dtype=np.uint32)
    names = references(palette)
    if not names:
        return codes.astype("<u4")
    refs = hex_lab(names)
    nearest, within = judge_lab(to_lab(unpack(codes)), refs, palette.tolerance)
    corrected = _corrected(codes, (hex_rgb(names), refs), palette.tolerance, nearest, within)
    out = corrected | (within.astype(np.uint32) << 24) | (nearest.astype(np.uint32) << NEAREST_SHIFT)
    return out.astype("<u4")


def build(palette: Palette, path: Path) -> bool:
    """Write the palette's table to `path` (atomically: a reader sees all of it or none). False when
    another process holds the build lock (it is building the same table)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if load(path) is not None:
            return True
        for leftover in path.parent.glob(f"{path.stem}.*.part"):  # a build killed midway (we hold its lock)
            leftover.unlink(missing_ok=True)
        started = time.monotonic()
        table = np.empty(COLOURS, dtype="<u4")
        for start in range(0, COLOURS, CHUNK):
            table[start : start + CHUNK] = entries(palette, start, start + CHUNK)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{path.stem}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                np.save(out, table)
            os.chmod(temporary, 0o644)  # mkstemp's 0600 would shut out workers running as another user
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        log.info("Built palette table %s in %.0f s", path.name, time.monotonic() - started)
        return True


_building: set[str] = set()
_building_lock = threading.Lock()


def build_in_background(palette: Palette, path: Path) -> None:
    """Start building in a daemon thread of this process at the lowest priority, once per table: jobs
    go on with the memo meanwhile, and the web server and the renders come first."""
    with _building_lock:
        if str(path) in _building:
            return
        _building.add(str(path))

    def run() -> None:
        if sys.platform.startswith("linux"):  # Linux alone takes a thread's id here: this thread only
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        try:
            with serial():
                build(palette, path)
        except Exception:
            log.exception("Palette table %s not built", path.name)
        finally:
            with _building_lock:
                _building.discard(str(path))

    threading.Thread(target=run, name="palette-table", daemon=True).start()


def wait_for_builds(timeout: float) -> bool:
    """Whether every background build of this process finished within `timeout` seconds (scripts, tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _building_lock:
            if not _building:
                return True
        time.sleep(0.05)
    return False
