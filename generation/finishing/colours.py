"""Colour helpers shared by the finishing stages: CIELAB and ΔE2000 through colour-science, and
images as packed colour words with their distinct colours. Worker-only (numpy, colour-science)."""

from __future__ import annotations

import functools
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import ModuleType
from unittest import mock

import numpy as np
from PIL import Image

from generation.finishing.plan import Palette
from generation.finishing.validators import hex_to_rgb

COLOUR_STAND_INS = {"scipy", "matplotlib", "cycler", "mpl_toolkits"}  # what colour-science mocks when missing


def _import_colour() -> ModuleType:
    """colour-science, without the stand-ins it leaves behind.

    When SciPy or Matplotlib are missing (they are: we need neither), colour-science warns and puts
    MagicMocks in sys.modules under their names. Left there, they break whatever imports next and probes
    for those packages (diffusers' find_spec("matplotlib") raises "matplotlib.__spec__ is not set", and
    code that tries `import scipy` would get a mock). colour keeps its own references; we remove the mocks.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in COLOUR_STAND_INS and isinstance(module, mock.NonCallableMock):
            del sys.modules[name]
    return colour


colour = _import_colour()


def references(palette: Palette) -> list[str]:
    """The palette's colours and its background (when it names one), without repeats, in order."""
    names = [*palette.colours, *([palette.background] if palette.background else [])]
    return list(dict.fromkeys(name.lower() for name in names))


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (..., 3) to CIELAB (D65)."""
    return to_lab_float(rgb.astype(np.float64))


def to_lab_float(rgb: np.ndarray) -> np.ndarray:
    """sRGB as floats on the 0..255 scale (mixes between 8-bit colours) to CIELAB (D65)."""
    return np.asarray(colour.XYZ_to_Lab(colour.sRGB_to_XYZ(np.asarray(rgb, dtype=np.float64) / 255.0)))


def delta_e(lab_a: np.ndarray, lab_b: np.ndarray) -> np.ndarray:
    """ΔE2000 between broadcastable Lab arrays; large ones split along the first axis over the worker's
    threads (numpy releases the GIL in its loops, and this is most of finishing's time)."""
    lab_a, lab_b = np.broadcast_arrays(np.asarray(lab_a, dtype=np.float64), np.asarray(lab_b, dtype=np.float64))
    threads = _threads()
    if threads < 2 or lab_a.ndim < 2 or lab_a[..., 0].size < PARALLEL_PAIRS:
        return np.asarray(colour.difference.delta_E_CIE2000(lab_a, lab_b))
    parts = zip(np.array_split(lab_a, threads), np.array_split(lab_b, threads), strict=True)
    return np.concatenate(list(_pool(threads).map(lambda ab: colour.difference.delta_E_CIE2000(*ab), parts)))


PARALLEL_PAIRS = 20_000  # below this, splitting costs more than it saves


def _threads() -> int:
    """The worker's thread budget: OMP_NUM_THREADS, as torch's (the launcher sets it to leave a core to
    the web server), else every core; one inside `serial()`."""
    if getattr(_local, "serial", False):
        return 1
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    except ValueError:
        return 1


_local = threading.local()


@contextmanager
def serial() -> Iterator[None]:
    """ΔE2000 on this thread alone, for background work that must not queue before a job's."""
    _local.serial = True
    try:
        yield
    finally:
        _local.serial = False


@functools.lru_cache(maxsize=1)
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="delta-e")


os.register_at_fork(after_in_child=_pool.cache_clear)  # a forked worker child starts its own threads


def hex_rgb(names: list[str]) -> np.ndarray:
    return np.array([hex_to_rgb(name) for name in names], dtype=np.uint8).reshape(-1, 3)


def hex_lab(names: list[str]) -> np.ndarray:
    return to_lab(hex_rgb(names))


# Pixels travel as one little-endian uint32 each, R | G << 8 | B << 16 (| A << 24): the bytes of Pillow's
# RGBX / RGBA, so reading and writing an image is one copy, and a colour is one integer to look up.


def has_alpha(image: Image.Image) -> bool:
    return image.mode in {"RGBA", "LA", "PA", "RGBa", "La"} or "transparency" in image.info


def image_words(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Each pixel's colour as a packed RGB uint32 (flat), and its alpha when the image has transparency."""
    if has_alpha(image):
        words = np.frombuffer(image.convert("RGBA").tobytes(), dtype="<u4")
        return words & 0xFFFFFF, (words >> 24).astype(np.uint8)
    return np.frombuffer(image.convert("RGBX").tobytes(), dtype="<u4") & 0xFFFFFF, None


def words_image(codes: np.ndarray, alpha: np.ndarray | None, size: tuple[int, int]) -> Image.Image:
    """The image back from packed RGB and an optional alpha: RGBA with alpha, RGB without."""
    if alpha is None:
        return Image.frombytes("RGB", size, codes.astype("<u4", copy=False).tobytes(), "raw", "RGBX")
    words = codes.astype("<u4") | (alpha.astype("<u4") << 24)
    return Image.frombytes("RGBA", size, words.tobytes(), "raw", "RGBA")


def pack(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 colours as packed uint32s."""
    rgb = rgb.astype(np.uint32)
    return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)


def unpack(codes: np.ndarray) -> np.ndarray:
    return np.stack([codes & 255, (codes >> 8) & 255, (codes >> 16) & 255], axis=-1).astype(np.uint8)


def colours_of(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct packed colours (sorted) and, per pixel, the index of its colour among them.

    np.unique's answer through two 2**24 tables, because sorting the 16 M pixels of a 4096 px image
    takes seconds and the tables a tenth of one. The tables are the worker's, kept between calls:
    the first write to each page of a fresh one costs a page fault, some 0.2 s over an icon's colours.
    Only the 256-colour rows (one green and blue, every red) that hold a pixel are scanned.
    """
    with _scratch_lock:
        present, slots, rows = _scratch()
        present[codes] = True
        rows[codes >> 8] = True
        used = np.flatnonzero(rows)
        rows[used] = False
        hits = present.reshape(-1, 256)[used]
        values = ((used[:, None].astype(np.uint32) << 8) | np.arange(256, dtype=np.uint32))[hits]
        present[values] = False  # left all False for the next call; slots need no clearing
        slots[values] = np.arange(values.size, dtype=np.int32)
        return values, slots[codes]


_scratch_lock = threading.Lock()
_tables: list[np.ndarray] = []


def _scratch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not _tables:
        # present (per colour), slots (per colour), rows (per 256-colour row)
        _tables.extend([np.zeros(1 << 24, bool), np.zeros(1 << 24, np.int32), np.zeros(1 << 16, bool)])
    return _tables[0], _tables[1], _tables[2]
