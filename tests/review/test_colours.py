"""A library item's dominant colours: shades of one flat colour count as that colour."""

from PIL import Image, ImageDraw

from generation.review.colours import _swatches


def test_an_anti_aliased_flat_icon_has_one_swatch_per_colour_not_one_per_shade() -> None:
    image = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((20, 20, 236, 236), fill=(15, 108, 189, 255))
    for step in range(8):  # a soft edge: shades between the blue and a lighter blue
        draw.ellipse((20 + step, 20 + step, 236 - step, 236 - step), outline=(15 + step * 3, 108 + step * 3, 189, 255))
    draw.rectangle((100, 100, 156, 156), fill=(16, 124, 16, 255))
    swatches = _swatches(image)
    assert len(swatches) == 2
    assert swatches[0].share > swatches[1].share and abs(sum(s.share for s in swatches) - 1) < 0.05
