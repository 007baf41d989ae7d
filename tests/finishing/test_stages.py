"""The image-only finishing stages: palette compliance and correction, unsharp masking, the transparent
background and the SVG trace (with its sanitiser), on icons drawn with Pillow and the demo kit."""

import random
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from generation.devtools.demo_kit import BACKGROUND, PALETTE, draw_icon
from generation.finishing import colours, palette, sharpen, svg, transparency
from generation.finishing.plan import Palette

BRAND = Palette(("#0f6cbd", "#107c10", "#f7630c", "#8764b8"), "#f6f7f9", 10.0)
BLUE = PALETTE["blue"]


def hard_edged_icon(size: int = 128) -> Image.Image:
    """Exactly on-palette: every pixel is a palette colour or the background (no anti-aliasing)."""
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, size // 2, size // 2), fill=PALETTE["blue"])
    draw.ellipse((size // 2, size // 2, size - 10, size - 10), fill=PALETTE["orange"])
    draw.polygon([(10, size - 10), (size // 3, size // 2), (size // 2, size - 10)], fill=PALETTE["green"])
    return image


def shifted(image: Image.Image, offset: tuple[int, int, int]) -> Image.Image:
    """Every colour moved by one RGB offset: the flat areas leave the palette, the edges stay mixes."""
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.int16) + offset, 0, 255).astype(np.uint8))


def rgb_pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3)


def distance_to_palette_segments(rgb: np.ndarray) -> np.ndarray:
    """sRGB distance (8-bit levels) from each colour to the nearest straight line between two of the brand's
    colours: where alpha blending, and anti-aliasing, put an edge's mixes."""
    refs = colours.hex_rgb(colours.references(BRAND)).astype(np.float64)
    best = np.full(len(rgb), np.inf)
    for i in range(len(refs)):
        for j in range(i + 1, len(refs)):
            a, ab = refs[i], refs[j] - refs[i]
            t = np.clip((rgb - a) @ ab / (ab @ ab), 0, 1)
            best = np.minimum(best, np.linalg.norm(rgb - (a + t[:, None] * ab), axis=1))
    return best


def edge_mask(alpha_or_mask: np.ndarray) -> np.ndarray:
    return (alpha_or_mask > 0) & (alpha_or_mask < 255)


def test_pixels_survive_the_packed_round_trip_the_stages_use():
    rgba = Image.fromarray(np.random.default_rng(2).integers(0, 256, (7, 5, 4), dtype=np.uint8), "RGBA")
    codes, alpha = colours.image_words(rgba)
    assert np.array_equal(np.asarray(colours.words_image(codes, alpha, rgba.size)), np.asarray(rgba))
    rgb = rgba.convert("RGB")
    codes, alpha = colours.image_words(rgb)
    assert alpha is None and np.array_equal(np.asarray(colours.words_image(codes, None, rgb.size)), np.asarray(rgb))
    assert np.array_equal(colours.unpack(codes).reshape(7, 5, 3), np.asarray(rgb))


# --- compliance


def test_an_exactly_on_palette_icon_scores_one():
    assert palette.compliance(hard_edged_icon(), BRAND) == 1.0


def test_a_demo_kit_icon_scores_almost_one_because_only_its_anti_aliased_edge_is_between_colours():
    assert palette.compliance(draw_icon("blue", "star", size=512), BRAND) > 0.99


def test_noise_scores_low():
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8))
    assert palette.compliance(noise, BRAND) < 0.15  # ΔE 10 round 5 colours: about 8 % of RGB


def test_fully_transparent_pixels_count_as_background_and_partly_transparent_ones_by_their_colour():
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)
    rgba[..., :3] = (255, 0, 255)  # off-palette magenta
    rgba[:5, :, 3] = 0  # the top half fully transparent: background, whatever its colour
    rgba[5:, :, 3] = 128  # the bottom half judged on its colour
    assert palette.compliance(Image.fromarray(rgba, "RGBA"), BRAND) == 0.5


def test_compliance_counts_the_background_only_when_the_palette_names_one():
    no_background = Palette(BRAND.colours, "", BRAND.tolerance)
    assert palette.compliance(Image.new("RGB", (8, 8), BACKGROUND), no_background) == 0.0


# --- correction


def test_correcting_shifted_colours_puts_the_flat_areas_back_on_the_palette_exactly():
    icon = draw_icon("blue", "circle", size=512)
    off = shifted(icon, (5, -4, 4))  # about 5 ΔE2000 off on the blue, the background alike
    exact = Palette(BRAND.colours, BRAND.background, 1.0)
    assert palette.compliance(off, exact) < 0.2

    fixed = palette.correct(off, BRAND)

    assert palette.compliance(fixed, exact) >= 0.98
    assert palette.compliance(fixed, BRAND) >= 0.98
    assert fixed.size == off.size and fixed.mode == "RGB"


def test_correction_keeps_edges_soft_with_only_palette_colours_and_their_mixes():
    off = shifted(draw_icon("blue", "circle", size=512), (5, -4, 4))
    fixed = palette.correct(off, BRAND)
    pixels = np.asarray(fixed).reshape(-1, 3)
    solid = {tuple(BLUE), tuple(BACKGROUND)}
    edge_colours = {tuple(c) for c in np.unique(pixels, axis=0)} - solid
    assert len(edge_colours) > 2  # a soft ramp, not a posterised step
    assert distance_to_palette_segments(rgb_pixels(fixed)).max() <= 0.9  # 8-bit rounding only


def test_correcting_twice_changes_nothing_beyond_rounding():
    once = palette.correct(shifted(draw_icon("green", "star", size=256), (-4, 5, 3)), BRAND)
    twice = palette.correct(once, BRAND)
    difference = np.abs(np.asarray(once, dtype=np.int16) - np.asarray(twice, dtype=np.int16))
    assert difference.max() <= 2 and (difference > 0).mean() < 0.01


def test_correction_leaves_colours_far_from_the_palette_alone_and_pulls_nearer_ones_part_way():
    far, near = (255, 0, 255), (200, 30, 30)  # ΔE2000 about 21 and 16 from the nearest palette mix
    image = Image.fromarray(np.array([[far, near]], dtype=np.uint8))
    out = np.asarray(palette.correct(image, BRAND), dtype=np.int16)
    assert tuple(out[0, 0]) == far
    moved = np.abs(out[0, 1] - near).max()
    assert 0 < moved < 40 and tuple(out[0, 1]) != PALETTE["orange"]


def test_correction_keeps_the_alpha_channel():
    rgba = shifted(draw_icon("purple", "plus", size=128), (3, 3, -3)).convert("RGBA")
    alpha = np.random.default_rng(1).integers(0, 256, (128, 128), dtype=np.uint8)
    rgba.putalpha(Image.fromarray(alpha))
    fixed = palette.correct(rgba, BRAND)
    assert fixed.mode == "RGBA"
    assert np.array_equal(np.asarray(fixed)[..., 3], alpha)


# --- sharpen


def test_unsharp_leaves_a_flat_image_unchanged():
    flat = Image.new("RGB", (64, 64), BLUE)
    assert np.array_equal(np.asarray(sharpen.unsharp(flat, 2.0, 150)), np.asarray(flat))


def test_unsharp_sharpens_colour_but_leaves_alpha_unchanged():
    icon = draw_icon("orange", "triangle", size=128).convert("RGBA")
    alpha = Image.new("L", icon.size, 0)
    ImageDraw.Draw(alpha).ellipse((20, 20, 108, 108), fill=200)
    icon.putalpha(alpha)
    sharpened = sharpen.unsharp(icon, 1.5, 120)
    assert sharpened.mode == "RGBA"
    assert np.array_equal(np.asarray(sharpened)[..., 3], np.asarray(alpha))
    assert not np.array_equal(np.asarray(sharpened)[..., :3], np.asarray(icon)[..., :3])


def test_unsharp_with_no_strength_is_a_copy():
    icon = draw_icon("green", "heart", size=64)
    assert np.array_equal(np.asarray(sharpen.unsharp(icon, 1.0, 0)), np.asarray(icon))


# --- transparent background


def test_cut_out_keys_the_background_keeps_the_shape_and_blends_the_edge():
    icon = draw_icon("blue", "circle", size=512)
    out = np.asarray(transparency.cut_out(icon, "#f6f7f9", 10.0))
    assert out.shape == (512, 512, 4)
    alpha = out[..., 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0
    assert alpha[256, 256] == 255 and tuple(out[256, 256, :3]) == BLUE
    assert edge_mask(alpha).sum() > 500


def test_cut_out_leaves_no_light_halo_on_anti_aliased_edges():
    out = np.asarray(transparency.cut_out(draw_icon("blue", "heart", size=512), "#f6f7f9", 10.0))
    alpha = out[..., 3]
    visible_edge = edge_mask(alpha) & (alpha >= 64)
    colour_error = np.abs(out[..., :3][visible_edge].astype(np.int16) - BLUE).max(axis=1)
    assert colour_error.max() <= 12  # un-premultiplied: the shape's own blue, not blue mixed with background
    faint_edge = edge_mask(alpha) & (alpha < 64)
    assert np.median(np.abs(out[..., :3][faint_edge].astype(np.int16) - BLUE).max(axis=1)) <= 12


def test_cut_out_keys_background_holes_not_connected_to_the_border():
    donut = Image.new("RGB", (200, 200), BACKGROUND)
    draw = ImageDraw.Draw(donut)
    draw.ellipse((10, 10, 190, 190), fill=PALETTE["green"])
    draw.ellipse((70, 70, 130, 130), fill=BACKGROUND)
    alpha = np.asarray(transparency.cut_out(donut, "#f6f7f9", 10.0))[..., 3]
    assert alpha[100, 100] == 0 and alpha[40, 100] == 255 and alpha[2, 2] == 0


def test_cut_out_ramps_alpha_smoothly_on_colours_that_are_not_edge_mixes():
    # Greys just off the background, in a picture with no solid colour to read them as mixes of.
    greys = np.array([[[246 - k, 247 - k, 249 - k] for k in range(0, 120, 4)]], dtype=np.uint8)
    alpha = np.asarray(transparency.cut_out(Image.fromarray(greys), "#f6f7f9", 10.0))[0, :, 3]
    assert alpha[0] == 0 and alpha[-1] == 255
    assert np.all(np.diff(alpha.astype(np.int16)) >= 0) and edge_mask(alpha).sum() >= 3


def test_cut_out_keeps_an_existing_alpha_channel():
    icon = draw_icon("orange", "square", size=64).convert("RGBA")
    icon.putalpha(128)
    alpha = np.asarray(transparency.cut_out(icon, "#f6f7f9", 10.0))[..., 3]
    assert alpha.max() == 128 and alpha[0, 0] == 0


def test_cut_out_refuses_a_missing_background_colour_with_a_reason():
    with pytest.raises(ValueError, match="needs the background colour"):
        transparency.cut_out(Image.new("RGB", (4, 4)), "", 10.0)


# --- SVG trace


def test_trace_gives_a_sanitised_svg_in_palette_colours_with_a_view_box():
    icon = draw_icon("orange", "heart", size=256, rng=random.Random(3))
    text = svg.trace(shifted(icon, (3, -3, 2)), BRAND)
    fills = set(re.findall(r'fill="([^"]+)"', text))
    assert fills and fills <= set(BRAND.colours)
    assert 'viewBox="0 0 256 256"' in text and 'width="256"' in text and 'height="256"' in text
    assert svg.sanitise(text) == text
    assert text.count("<path") <= 3  # one heart, no speckles or background rectangle


def test_trace_leaves_the_background_and_transparent_pixels_out():
    image = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 127, 127), fill=(*BACKGROUND, 255))
    draw.rectangle((32, 32, 96, 96), fill=(*PALETTE["green"], 255))
    draw.rectangle((0, 0, 20, 20), fill=(255, 0, 0, 0))  # transparent red: left out, not traced
    text = svg.trace(image, BRAND)
    assert set(re.findall(r'fill="([^"]+)"', text)) == {"#107c10"}


def test_trace_keeps_a_hole_in_the_shape_open():
    donut = Image.new("RGB", (200, 200), BACKGROUND)
    draw = ImageDraw.Draw(donut)
    draw.ellipse((10, 10, 190, 190), fill=PALETTE["purple"])
    draw.ellipse((70, 70, 130, 130), fill=BACKGROUND)
    text = svg.trace(donut, BRAND)
    path = re.search(r' d="([^"]+)"', text)
    assert path and path.group(1).count("M") == 2  # the outline and the hole


def test_trace_of_a_large_image_keeps_its_size_and_scales_the_traced_paths(monkeypatch):
    monkeypatch.setattr(svg, "TRACE_MAX_SIDE", 128)
    text = svg.trace(draw_icon("blue", "square", size=256), BRAND)
    assert 'width="256"' in text and 'height="256"' in text and 'viewBox="0 0 256 256"' in text
    assert '<g transform="scale(2 2)">' in text and set(re.findall(r'fill="([^"]+)"', text)) == {"#0f6cbd"}


# --- sanitising


def test_sanitise_strips_scripts_event_handlers_external_links_and_embedded_documents():
    dirty = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'viewBox="0 0 10 10" onload="alert(1)">'
        "<script>alert(2)</script>"
        '<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject>'
        '<image href="https://evil.example/x.png"/>'
        '<use xlink:href="https://evil.example/s.svg#a"/>'
        '<a href="javascript:alert(3)"><rect width="1" height="1"/></a>'
        '<linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient>'
        '<path d="M0 0h5v5z" fill="url(#g)" onclick="alert(4)" style="fill:url(https://evil.example/f)"/>'
        '<rect width="2" height="2" fill="url(https://evil.example/p)" xlink:href="#g"/>'
        "</svg>"
    )
    clean = svg.sanitise(dirty)
    for banned in ("script", "alert", "onload", "onclick", "foreignObject", "evil.example", "<image", "<use", "<a"):
        assert banned not in clean
    assert 'fill="url(#g)"' in clean and 'href="#g"' in clean and "<linearGradient" in clean
    assert clean.startswith("<svg") and 'viewBox="0 0 10 10"' in clean
    assert svg.sanitise(clean) == clean


def test_sanitise_keeps_title_and_description_text():
    clean = svg.sanitise("<svg><title>Logo &amp; mark</title><desc>flat</desc><g><circle r='1'/></g></svg>")
    assert "<title>Logo &amp; mark</title>" in clean and '<circle r="1"' in clean


@pytest.mark.parametrize(
    "text, reason",
    [
        ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "boom">]><svg>&x;</svg>', "DTD"),
        ('<!DOCTYPE svg SYSTEM "http://evil.example/svg.dtd"><svg/>', "DTD"),
        ("<svg><path d='M0 0'></svg>", "well-formed"),
        ("not xml at all", "well-formed"),
        ("", "empty"),
        ('<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>', "root element is <html>"),
    ],
)
def test_sanitise_refuses_entities_and_anything_that_is_not_a_well_formed_svg(text, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        svg.sanitise(text)
    assert not svg.is_valid(text)


def test_sanitise_accepts_an_svg_with_an_xml_declaration():
    assert svg.is_valid('<?xml version="1.0" encoding="UTF-8"?><svg xmlns="http://www.w3.org/2000/svg"/>')


def test_importing_the_palette_stage_leaves_no_mock_modules_behind_for_diffusers_to_trip_on():
    code = (
        "import importlib.util, sys; from generation.finishing import palette; "
        "print([n for n in ('scipy', 'matplotlib', 'cycler') if n in sys.modules]); "
        "print(importlib.util.find_spec('matplotlib'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["[]", "None"]


def test_the_svg_module_imports_without_numpy_or_vtracer_for_the_web_process():
    code = (
        "import sys; from generation.finishing import svg; svg.sanitise('<svg/>'); "
        "print(sorted(m for m in ('numpy', 'vtracer', 'colour', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
