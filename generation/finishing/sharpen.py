"""Unsharp masking for the finished image: crisper edges after upscaling. Worker-only (Pillow)."""

from __future__ import annotations

from PIL import Image, ImageFilter


def unsharp(image: Image.Image, radius: float, amount: int, threshold: int = 2) -> Image.Image:
    """Pillow's UnsharpMask on the colour channels only: sharpening alpha would put hard fringes on a cut-out.

    `amount` is the strength in percent; `threshold` the smallest difference (levels) that is sharpened,
    so flat areas and gentle gradients are left exactly as they were.
    """
    if radius <= 0 or amount <= 0:
        return image.copy()
    mask = ImageFilter.UnsharpMask(radius=radius, percent=amount, threshold=threshold)
    if image.mode == "RGBA":
        rgb, alpha = image.convert("RGB"), image.getchannel("A")
        sharpened = rgb.filter(mask)
        sharpened.putalpha(alpha)
        return sharpened
    if image.mode in {"RGB", "L"}:
        return image.filter(mask)
    return image.convert("RGB").filter(mask)
