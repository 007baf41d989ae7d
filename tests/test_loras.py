"""Brand LoRAs: checked when an admin saves them, combined per asset type, matched to the model's family."""

import shutil
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from generation import lora_files, services
from generation.models import BrandLora, ImageModel, PresetLora
from tests.factories import AssetPresetFactory
from tests.loras import make_lora, write_safetensors_header

pytestmark = pytest.mark.django_db


@pytest.fixture
def lora_root(settings, tmp_path) -> Path:
    settings.STUDIO_LORA_ROOT = tmp_path / "loras"
    (tmp_path / "loras" / "flux").mkdir(parents=True)
    return tmp_path / "loras"


@pytest.fixture
def flux_lora_file(lora_root, tiny_flux_dir, tmp_path) -> str:
    made = make_lora("flux", tiny_flux_dir, tmp_path / "made", seed=1)
    shutil.copy(made, lora_root / "flux" / "icons-v1.safetensors")
    return "flux/icons-v1.safetensors"


def lora(**fields) -> BrandLora:
    return BrandLora(**({"name": "Icons v1", "family": "flux"} | fields))


def test_a_lora_for_the_family_and_installed_model_is_accepted(flux_lora_file) -> None:
    entry = lora(file=flux_lora_file)
    entry.full_clean()
    assert entry.file_format == "diffusers"


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("flux/missing.safetensors", "No .safetensors file at loras/flux/missing.safetensors"),
        ("../../etc/passwd", "inside the loras/ folder"),
    ],
)
def test_a_missing_or_outside_file_is_refused(lora_root, file, message) -> None:
    with pytest.raises(ValidationError, match=message):
        lora(file=file).full_clean()


def test_a_corrupt_file_is_refused_with_a_clear_message(lora_root) -> None:
    (lora_root / "flux" / "broken.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ValidationError, match="not a readable .safetensors file"):
        lora(file="flux/broken.safetensors").full_clean()


def test_an_sdxl_lora_attached_as_flux_is_refused(lora_root) -> None:
    write_safetensors_header(
        lora_root / "flux" / "sdxl.safetensors", ["lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"]
    )
    with pytest.raises(ValidationError, match=r"This is a SDXL LoRA \(kohya format\), not one for FLUX.1"):
        lora(file="flux/sdxl.safetensors").full_clean()


def test_a_lora_of_another_model_with_the_same_layer_names_is_refused_by_shape(lora_root, tmp_path) -> None:
    from generation.engine.tiny import build_tiny_sd3

    sd3_dir = build_tiny_sd3(tmp_path / "sd3")
    shutil.copy(make_lora("sd3", sd3_dir, tmp_path / "sd3-lora", seed=1), lora_root / "flux" / "sd3.safetensors")
    with pytest.raises(ValidationError, match="does not fit the installed models: Tiny FLUX"):
        lora(file="flux/sd3.safetensors").full_clean()


@pytest.mark.parametrize(
    ("key", "family", "fmt"),
    [
        ("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", "flux", "kohya"),
        ("diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight", "flux", "ai-toolkit"),
        ("double_blocks.0.processor.proj_lora1.down.weight", "flux", "xlabs"),
        ("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", "sdxl", "kohya"),
        ("lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q.lora_down.weight", "sdxl", "kohya"),
        ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight", "sd1", "kohya"),
        ("unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight", "sdxl", "diffusers"),
        ("transformer.double_stream_blocks.0.block.attn1.to_q.lora_A.weight", "hidream", "diffusers"),
        ("transformer.layers.3.attention.to_q.lora_A.weight", "zimage", "diffusers"),
        ("transformer.transformer_blocks.0.img_mlp.net.0.proj.lora_A.weight", "qwenimage", "diffusers"),
        ("transformer.single_transformer_blocks.0.attn.to_qkv_mlp_proj.lora_A.weight", "flux2", "diffusers"),
        ("transformer.single_transformer_blocks.0.proj_mlp.lora_A.weight", "flux", "diffusers"),
    ],
)
def test_lora_formats_trained_elsewhere_are_recognised(key, family, fmt) -> None:
    families, found = lora_files.detect([key])
    assert family in families and found == fmt


def test_an_asset_type_applies_its_loras_for_the_models_family_with_trigger_words(flux_lora_file, preset) -> None:
    icons = lora(file=flux_lora_file, trigger_words="brandicon style")
    icons.save()
    other = BrandLora.objects.create(name="SDXL icons", family="sdxl", file="sdxl/icons.safetensors")
    PresetLora.objects.create(preset=preset, lora=icons, strength=0.7)
    PresetLora.objects.create(preset=preset, lora=other, strength=0.9)
    params = services.resolve_params(
        preset=preset,
        model=ImageModel.objects.get(key="tiny-flux"),
        prompt="a gear",
        quality="standard",
        variations=1,
        width=64,
        height=64,
        seed=1,
    )
    assert params["prompt"] == "brandicon style, a gear, flat icon"
    assert params["loras"] == [
        {"name": "Icons v1", "path": flux_lora_file, "strength": 0.7, "trigger_words": "brandicon style"}
    ]


def test_a_job_of_an_asset_type_with_a_lora_renders_with_it(flux_lora_file, preset) -> None:
    from generation import runner
    from tests.factories import GenerationJobFactory

    icons = lora(file=flux_lora_file)
    icons.save()
    plain = GenerationJobFactory(preset=preset, images_total=1)
    PresetLora.objects.create(preset=preset, lora=icons, strength=1.0)
    styled = GenerationJobFactory(preset=preset, images_total=1)
    for job in (plain, styled):
        runner.run_job(str(job.pk), worker="gpu@test")
        job.refresh_from_db()
        assert job.status == "complete", job.error
    assert styled.params["loras"] and not plain.params["loras"]
    assert plain.images.get().file.read() != styled.images.get().file.read()


def test_an_sd1_lora_is_refused_as_a_family_the_studio_does_not_run(lora_root) -> None:
    write_safetensors_header(
        lora_root / "flux" / "sd15.safetensors",
        ["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight"],
    )
    with pytest.raises(ValidationError, match=r"This is a sd1 LoRA \(kohya format\), not one for FLUX.1"):
        lora(file="flux/sd15.safetensors").full_clean()


def test_a_kohya_flux_lora_converts_to_the_diffusers_layers_it_detects(tmp_path) -> None:
    """diffusers' kohya converter assumes FLUX.1's real widths (3072), so the file has them
    (rank 1, one block: a few hundred KB); injection itself is tested on the tiny models."""
    import torch
    from diffusers import FluxPipeline
    from safetensors.torch import save_file

    width = 3072
    path = tmp_path / "kohya.safetensors"
    save_file(
        {
            "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": torch.randn(1, width),
            "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight": torch.randn(3 * width, 1),
            "lora_unet_double_blocks_0_img_attn_qkv.alpha": torch.tensor(1.0),
        },
        path,
    )
    assert lora_files.detect(list(lora_files.read_header(path))) == ({"flux"}, "kohya")
    converted = FluxPipeline.lora_state_dict(str(path))
    converted = converted[0] if isinstance(converted, tuple) else converted
    assert {k.rsplit(".lora", 1)[0] for k in converted} >= {
        f"transformer.transformer_blocks.0.attn.to_{x}" for x in "qkv"
    }


def test_an_asset_type_takes_only_a_lora_whose_file_is_there_and_whose_family_has_a_model(flux_lora_file) -> None:
    preset = AssetPresetFactory()
    good = lora(file=flux_lora_file)
    good.save()
    PresetLora(preset=preset, lora=good, strength=0.8).full_clean()
    gone = BrandLora.objects.create(name="Gone", family="flux", file="flux/gone.safetensors")
    with pytest.raises(ValidationError, match="its file loras/flux/gone.safetensors is missing"):
        PresetLora(preset=preset, lora=gone, strength=0.8).full_clean()
    ImageModel.objects.filter(family="flux").delete()
    with pytest.raises(ValidationError, match="no model of that family is registered"):
        PresetLora(preset=preset, lora=good, strength=0.8).full_clean()
