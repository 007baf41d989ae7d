"""The edges a canny ControlNet follows. Torch-free (OpenCV), so the studio form's preview and the
engine draw them the same way."""

from __future__ import annotations

from PIL import Image


def canny_edges(image: Image.Image, low: int = 100, high: int = 200) -> Image.Image:
    """What a canny ControlNet follows: white edges on black (OpenCV's Canny, ControlNet's thresholds)."""
    import cv2  # OpenCV and numpy: loaded when edges are first drawn
    import numpy as np

    edges = cv2.Canny(np.asarray(image.convert("L")), low, high)
    return Image.fromarray(edges).convert("RGB")
