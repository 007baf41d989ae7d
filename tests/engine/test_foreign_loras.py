"""LoRAs trained elsewhere for FLUX.2 [klein], Z-Image, Qwen-Image and HiDream-I1: recognised when an
admin saves them, checked against the installed model's widths, and applied in a job.

The files are built offline in each trainer's key layout (generation.devtools.foreign_loras) with
the widths of the tiny architecture-true pipelines; each pipeline is built and loaded once here.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from django.urls import reverse

from generation import lora_files
from generation.devtools.foreign_loras import foreign_shapes, write_lora
from generation.devtools.loras import make_lora
from generation.devtools.tiny import TINY_BUILDERS
from generation.engine import engine_class
from generation.engine.base import DiffusersEngine
from generation.engine.loras import converted_state_dict
from generation.engine.types import GenerationRequest, LoraSpec
from generation.models import BrandLora, ImageModel
from tests.factories import UserFactory
from tests.loras import kohya_flux

pytestmark = pytest.mark.django_db

MODELS = {
    "flux2": "Tiny FLUX.2 [klein]",
    "zimage": "Tiny Z-Image",
    "qwenimage": "Tiny Qwen-Image",
    "hidream": "Tiny HiDream-I1",
}
# (family, the trainer's layout, the format the studio records, who converts it at load)
CASES = [
    ("flux2", "kohya", "kohya", "studio"),
    ("flux2", "ai-toolkit", "ai-toolkit", "studio"),
    ("zimage", "musubi", "musubi", "diffusers"),
    ("zimage", "musubi-comfy", "musubi", "diffusers"),
    ("zimage", "ai-toolkit", "ai-toolkit", "diffusers"),
    ("qwenimage", "musubi", "musubi", "diffusers"),
    ("qwenimage", "ai-toolkit", "ai-toolkit", "diffusers"),
    ("hidream", "ai-toolkit", "ai-toolkit", "diffusers"),
    ("hidream", "onetrainer", "diffusers", "studio"),
]
IDS = [f"{family}-{layout}" for family, layout, _, _ in CASES]
LAYOUTS = [case[:2] for case in CASES]
DOWN = (".lora_down.weight", ".lora_A.weight")


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("foreign-models")
    return {family: TINY_BUILDERS[family](root / family) for family in MODELS}


@pytest.fixture(scope="module")
def engines(tiny_dirs):
    """family -> its engine on the tiny pipeline, loaded the first time a test asks."""
    loaded: dict[str, DiffusersEngine] = {}

    def engine(family: str) -> DiffusersEngine:
        if family not in loaded:
            loaded[family] = engine_class(family)(tiny_dirs[family], device="cpu")
        return loaded[family]

    return engine


@pytest.fixture(scope="module")
def plain_images(engines):
    """family -> its image without LoRAs, rendered once."""
    rendered: dict[str, np.ndarray] = {}

    def image(family: str) -> np.ndarray:
        if family not in rendered:
            rendered[family] = render(engines(family))
        return rendered[family]

    return image


@pytest.fixture
def lora_root(settings, tmp_path) -> Path:
    settings.STUDIO_LORA_ROOT = tmp_path / "loras"
    for family in (*MODELS, "flux", "qwenimageedit"):
        (tmp_path / "loras" / family).mkdir(parents=True)
    return tmp_path / "loras"


@pytest.fixture
def installed(tiny_dirs, lora_root) -> None:
    for family, name in MODELS.items():
        install(family, name, tiny_dirs[family])


def install(family: str, name: str, folder: Path) -> ImageModel:
    return ImageModel.objects.create(
        key=f"tiny-{family}", name=name, family=family, local_path=str(folder), license_name="MIT", commercial_use=True
    )


@pytest.fixture
def admin_client(client):
    UserFactory(username="ada", is_staff=True, is_superuser=True)
    client.login(username="ada", password="correct horse battery staple")
    return client


def admin_save(admin_client, file: str, family: str) -> str:
    """Saves a LoRA through the admin's form; its error text, or "" when it was saved."""
    data = {"name": "Brand", "family": family, "file": file, "enabled": "on", "metadata": "{}"}
    response = admin_client.post(reverse("admin:generation_brandlora_add"), data)
    if response.status_code == 302:
        return ""
    assert response.status_code == 200
    return " ".join(str(e) for e in response.context["adminform"].form.errors.get("file", []))


def render(engine: DiffusersEngine, loras: list[LoraSpec] | None = None) -> np.ndarray:
    images: list = []
    request = GenerationRequest("a gear", "", 64, 64, 2, 3.5, [5], loras=loras or [])
    engine.generate(request, max_batch=1, on_step=lambda s, t: None, on_images=lambda i, b: images.extend(b))
    return np.asarray(images[0], dtype=np.int16)


def first_layer(shapes: dict[str, tuple[int, ...]]) -> tuple[str, str]:
    """The first layer's name and its down suffix."""
    key = next(k for k in shapes if k.endswith(DOWN))
    suffix = next(s for s in DOWN if key.endswith(s))
    return key.removesuffix(suffix), suffix


def renamed(shapes: dict[str, tuple[int, ...]], base: str, new: str) -> dict[str, tuple[int, ...]]:
    """`shapes` with a copy of layer `base`'s tensors under the name `new`."""
    return shapes | {new + key[len(base) :]: shape for key, shape in shapes.items() if key.startswith(base + ".")}


# --- recognised at upload, checked against the installed model


@pytest.mark.parametrize(("family", "layout", "fmt", "converter"), CASES, ids=IDS)
def test_a_lora_trained_elsewhere_is_recognised_by_its_family_and_format(tiny_dirs, family, layout, fmt, converter):
    shapes = foreign_shapes(family, layout, tiny_dirs[family])
    families, found = lora_files.detect(list(shapes), {k: list(v) for k, v in shapes.items()})
    assert family in families and found == fmt


def test_flux1_and_flux2_files_in_bfl_names_are_told_apart_by_their_names_and_mlp_widths(tiny_dirs) -> None:
    def families(shapes: dict[str, tuple[int, ...]], *, widths: bool = True) -> set[str]:
        return lora_files.detect(list(shapes), {k: list(v) for k, v in shapes.items()} if widths else None)[0]

    flux2 = foreign_shapes("flux2", "kohya", tiny_dirs["flux2"])
    attention_only = {k: v for k, v in flux2.items() if "_attn_" in k}
    assert families(flux2) == {"flux2", "flux2dev"}  # a gated 3x MLP
    assert families(kohya_flux()) == {"flux"}  # a 4x MLP
    assert families(attention_only) == {"flux", "flux2", "flux2dev"}  # the installed models' widths decide
    assert families(attention_only, widths=False) == {"flux"}  # by names alone, FLUX.1's as before
    modulation = {"lora_unet_single_stream_modulation_lin.lora_down.weight": (2, 32)}
    assert families(attention_only | modulation, widths=False) == {"flux2", "flux2dev"}


@pytest.mark.parametrize(("family", "layout", "fmt", "converter"), CASES, ids=IDS)
def test_a_lora_trained_elsewhere_with_the_models_widths_is_accepted_in_the_admin(
    admin_client, installed, tiny_dirs, lora_root, family, layout, fmt, converter
):
    write_lora(lora_root / family / "brand.safetensors", foreign_shapes(family, layout, tiny_dirs[family]))
    assert admin_save(admin_client, f"{family}/brand.safetensors", family) == ""
    saved = BrandLora.objects.get()
    assert (saved.file_format, saved.fits) == (fmt, [f"tiny-{family}"])


@pytest.mark.parametrize("family", sorted(MODELS))
def test_a_diffusers_format_lora_is_accepted_for_each_of_these_families(
    admin_client, installed, tiny_dirs, lora_root, tmp_path, family
):
    made = make_lora(family, tiny_dirs[family], tmp_path / "made", seed=1)
    (lora_root / family / "peft.safetensors").write_bytes(made.read_bytes())
    assert admin_save(admin_client, f"{family}/peft.safetensors", family) == ""
    assert BrandLora.objects.get().file_format == "diffusers"


@pytest.mark.parametrize(("family", "layout"), LAYOUTS, ids=IDS)
def test_a_layer_for_a_block_the_model_does_not_have_is_refused_naming_it(
    admin_client, installed, tiny_dirs, lora_root, family, layout
):
    shapes = foreign_shapes(family, layout, tiny_dirs[family])
    base, _ = first_layer(shapes)
    extra = re.sub(r"([._])0([._])", r"\g<1>7\2", base, count=1)  # the tiny models have one block of each kind
    write_lora(lora_root / family / "deeper.safetensors", renamed(shapes, base, extra))
    error = admin_save(admin_client, f"{family}/deeper.safetensors", family)
    assert f"The LoRA does not fit the installed models: {MODELS[family]}: {extra}" in error
    assert re.search(r"names no layer of|is not a linear or conv layer of", error), error


@pytest.mark.parametrize(("family", "layout"), LAYOUTS, ids=IDS)
def test_a_layer_of_another_width_is_refused_naming_it(admin_client, installed, tiny_dirs, lora_root, family, layout):
    shapes = foreign_shapes(family, layout, tiny_dirs[family])
    base, down = first_layer(shapes)
    rank, width = shapes[base + down]
    write_lora(lora_root / family / "wider.safetensors", shapes | {base + down: (rank, width + 16)})
    error = admin_save(admin_client, f"{family}/wider.safetensors", family)
    expected = rf"{re.escape(base)}: expected {width} inputs \(as transformer\.[\w.]+\), found {width + 16}"
    assert re.search(expected, error), error


@pytest.mark.parametrize(
    ("family", "layout", "layer", "rows", "message"),
    [
        # FLUX.1's single-block width (q, k, v and a 4x MLP) where FLUX.2 has a gated 3x MLP
        (
            "flux2",
            "kohya",
            "lora_unet_single_blocks_0_linear1",
            224,
            "expected 288 outputs (as transformer.single_transformer_blocks.0.attn.to_qkv_mlp_proj), found 224",
        ),
        (
            "zimage",
            "musubi-comfy",
            "lora_unet_layers_0_attention_qkv",
            64,
            "expected 96 outputs (to_q 32 + to_k 32 + to_v 32), found 64",
        ),
    ],
)
def test_a_fused_layer_is_checked_against_the_modules_it_covers(
    admin_client, installed, tiny_dirs, lora_root, family, layout, layer, rows, message
):
    shapes = foreign_shapes(family, layout, tiny_dirs[family])
    write_lora(lora_root / family / "fused.safetensors", shapes | {f"{layer}.lora_up.weight": (rows, 2)})
    assert f"{MODELS[family]}: {layer}: {message}" in admin_save(admin_client, f"{family}/fused.safetensors", family)


@pytest.mark.parametrize(
    ("made_for", "layout", "saved_as", "message"),
    [
        ("flux2", "kohya", "flux", "This is a FLUX.2 [dev] or FLUX.2 [klein] LoRA (kohya format), not one for FLUX.1"),
        ("flux", "kohya", "flux2", "This is a FLUX.1 LoRA (kohya format), not one for FLUX.2 [klein]"),
        ("zimage", "musubi", "qwenimage", "This is a Z-Image LoRA (musubi format), not one for Qwen-Image"),
        (
            "qwenimage",
            "musubi",
            "zimage",
            "This is a Qwen-Image or Qwen-Image-Edit LoRA (musubi format), not one for Z-Image",
        ),
        ("hidream", "ai-toolkit", "flux2", "This is a HiDream-I1 LoRA (ai-toolkit format), not one for FLUX.2 [klein]"),
    ],
)
def test_a_lora_for_one_family_saved_for_another_is_refused_naming_both(
    admin_client, installed, tiny_dirs, lora_root, made_for, layout, saved_as, message
):
    shapes = kohya_flux() if made_for == "flux" else foreign_shapes(made_for, layout, tiny_dirs[made_for])
    write_lora(lora_root / saved_as / "elsewhere.safetensors", shapes)
    assert message in admin_save(admin_client, f"{saved_as}/elsewhere.safetensors", saved_as)


def test_a_qwen_image_lora_fits_qwen_image_edit_which_shares_its_transformer(
    admin_client, tiny_dirs, lora_root, tmp_path
):
    install("qwenimageedit", "Tiny Qwen-Image-Edit", TINY_BUILDERS["qwenimageedit"](tmp_path / "edit"))
    write_lora(
        lora_root / "qwenimageedit" / "brand.safetensors", foreign_shapes("qwenimage", "musubi", tiny_dirs["qwenimage"])
    )
    assert admin_save(admin_client, "qwenimageedit/brand.safetensors", "qwenimageedit") == ""
    assert BrandLora.objects.get().fits == ["tiny-qwenimageedit"]


# --- applied in a job


@pytest.mark.parametrize(("family", "layout", "fmt", "converter"), CASES, ids=IDS)
def test_a_lora_trained_elsewhere_changes_the_image_the_engine_renders(
    engines, plain_images, tiny_dirs, tmp_path, family, layout, fmt, converter
):
    engine = engines(family)
    path = write_lora(tmp_path / f"{layout}.safetensors", foreign_shapes(family, layout, tiny_dirs[family]), seed=3)
    assert isinstance(engine.lora_weights(path), dict) == (converter == "studio")
    styled = render(engine, [LoraSpec(path, 1.0)])
    assert np.abs(styled - plain_images(family)).mean() > 1


def deltas(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """module -> the weight change its LoRA makes (up @ down), whatever the split of the scale."""
    downs = {k.removesuffix(".lora_A.weight"): v for k, v in state.items() if k.endswith(".lora_A.weight")}
    return {m: state[f"{m}.lora_B.weight"].float() @ down.float() for m, down in downs.items()}


@pytest.mark.parametrize(
    ("family", "layout", "fmt"),
    [(family, layout, fmt) for family, layout, fmt, converter in CASES if converter == "diffusers"],
)
def test_diffusers_converts_the_files_left_to_it_as_the_studios_plan_maps_them(
    engines, tiny_dirs, tmp_path, family, layout, fmt
):
    """Every layer lands on the module the admin's check found for it, with the same alpha scale."""
    pipe = engines(family).pipe
    path = write_lora(tmp_path / "lora.safetensors", foreign_shapes(family, layout, tiny_dirs[family]), alpha=1.0)
    theirs = type(pipe).lora_state_dict(str(path))
    theirs = deltas(theirs[0] if isinstance(theirs, tuple) else theirs)
    ours = deltas(converted_state_dict(path, fmt, pipe))
    assert sorted(theirs) == sorted(ours)
    assert all(torch.allclose(theirs[m], ours[m], atol=1e-5) for m in ours)


def test_the_studio_loads_the_flux2_layers_that_diffusers_kohya_converter_drops(engines, tiny_dirs, tmp_path):
    pipe = engines("flux2").pipe
    modulation = "lora_unet_double_stream_modulation_img_lin"
    shapes = foreign_shapes("flux2", "kohya", tiny_dirs["flux2"])
    shapes |= {
        f"{modulation}.lora_down.weight": (2, 32),
        f"{modulation}.lora_up.weight": (192, 2),
        f"{modulation}.alpha": (),
    }
    path = write_lora(tmp_path / "kohya.safetensors", shapes)
    theirs = type(pipe).lora_state_dict(str(path))
    target = "transformer.double_stream_modulation_img.linear.lora_B.weight"
    assert target not in (theirs[0] if isinstance(theirs, tuple) else theirs)
    assert target in converted_state_dict(path, "kohya", pipe)


def test_the_studio_converts_by_a_quantized_models_widths_not_its_packed_bytes(tiny_flux_dir, tmp_path) -> None:
    """A GGUF linear stores its weight as blocks of bytes (Q8_0: 34 for every 32 values)."""
    from generation.devtools.gguf import build_tiny_gguf

    gguf = build_tiny_gguf(tiny_flux_dir, tmp_path / "tiny-flux-Q8_0.gguf")
    quantized = engine_class("flux")(tiny_flux_dir, device="cpu", options={"gguf": str(gguf)})
    path = write_lora(tmp_path / "kohya.safetensors", kohya_flux())
    converted = converted_state_dict(path, "kohya", quantized.pipe)
    assert converted["transformer.single_transformer_blocks.0.proj_mlp.lora_B.weight"].shape == (128, 2)
