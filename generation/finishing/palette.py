"""Palette compliance (the share of on-brand pixels) and palette correction, in CIELAB with ΔE2000.

Worker-only (numpy, colour-science). Each colour is judged once (`table`: the palette's lookup table,
or a memo until it is built) and the answer mapped back to the pixels, because an icon of millions of
pixels has only tens of thousands of colours: noise round, and anti-aliased mixes of, a handful of
brand colours.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from generation.finishing.colours import colours_of, image_words, references, words_image
from generation.finishing.plan import Palette
from generation.finishing.table import judged


def compliance(image: Image.Image, palette: Palette) -> float:
    """Share (0..1) of pixels within the tolerance (ΔE2000) of a palette colour or the background.

    Fully transparent pixels count as background; partly transparent ones are judged on their colour.
    """
    return score_and_correct(image, palette, correct=False)[0]


def score_and_correct(image: Image.Image, palette: Palette, *, correct: bool) -> tuple[float, Image.Image]:
    """The compliance score and, with `correct`, the corrected image (else `image`): one pass over the
    pixels for both, as the palette stage needs them."""
    codes, alpha = image_words(image)
    if codes.size == 0:
        return 1.0, image
    values, index = colours_of(codes)
    table = judged(palette)
    pixels = table.judge(values)[1][index]
    if alpha is not None:
        pixels |= alpha.ravel() == 0
    score = int(pixels.sum()) / pixels.size
    if not correct or not references(palette):
        return score, image
    return score, words_image(table.correct(values)[index], alpha, image.size)


def correct(image: Image.Image, palette: Palette) -> Image.Image:
    """Move flat areas onto the palette while keeping anti-aliased edges soft.

    Per colour, in CIELAB, against the palette colours plus the background:
    - within the tolerance of a palette colour: that colour exactly;
    - within the tolerance of the segment between two palette colours (an edge's mix): the mix of those two,
      weighted by where the colour projects onto the segment, so edges stay smooth but hold only palette
      colours and their mixes (a mix that lands within the tolerance of an end becomes that end);
    - farther: blended toward the nearest such point, fully at the tolerance, fading smoothly to not at all
      at twice the tolerance, so off-palette detail is kept (mostly) as it was.
    The first two are fixed points, so correcting twice gives the same image (within sRGB rounding).
    """
    codes, alpha = image_words(image)
    if not references(palette) or codes.size == 0:
        return words_image(codes, alpha, image.size)
    values, index = colours_of(codes)
    return words_image(judged(palette).correct(values)[index], alpha, image.size)


def nearest_references(values: np.ndarray, palette: Palette) -> np.ndarray:
    """Per distinct packed colour (sorted), the index of its nearest reference (`references(palette)`)."""
    return judged(palette).judge(values)[0]
