"""Brand LoRAs: checked when an admin saves them, combined per asset type, matched to the model's family."""

import re
import shutil
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from generation import lora_files
from generation.devtools.loras import make_lora
from generation.jobs import recipe
from generation.models import BrandLora, ImageModel, PresetLora
from generation.worker import run as worker_run
from tests.factories import AssetPresetFactory, GenerationJobFactory, UserFactory
from tests.loras import (
    ai_toolkit_flux,
    kohya_flux,
    kohya_sdxl,
    write_lora,
    write_raw,
    write_safetensors_header,
    xlabs_flux,
)

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
    from generation.devtools.tiny import build_tiny_sd3

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
    params = recipe.resolve_params(
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
    from tests.factories import GenerationJobFactory

    icons = lora(file=flux_lora_file)
    icons.save()
    plain = GenerationJobFactory(preset=preset, images_total=1)
    PresetLora.objects.create(preset=preset, lora=icons, strength=1.0)
    styled = GenerationJobFactory(preset=preset, images_total=1)
    for job in (plain, styled):
        worker_run.run_job(str(job.pk), worker="gpu@test")
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


# --- the whole file is checked, not only its header


@pytest.fixture
def admin_client(client):
    UserFactory(username="ada", is_staff=True, is_superuser=True)
    client.login(username="ada", password="correct horse battery staple")
    return client


def admin_save(admin_client, file: str, family: str = "flux") -> str:
    """Saves a LoRA through the admin's form; its error text, or "" when it was saved."""
    data = {"name": "Brand", "family": family, "file": file, "enabled": "on", "metadata": "{}"}
    response = admin_client.post(reverse("admin:generation_brandlora_add"), data)
    if response.status_code == 302:
        return ""
    assert response.status_code == 200
    return " ".join(str(e) for e in response.context["adminform"].form.errors.get("file", []))


def f32(*spans: tuple[int, int], shape=(4, 4)) -> dict:
    return {
        f"t{i}.lora_A.weight": {"dtype": "F32", "shape": list(shape), "data_offsets": list(s)}
        for i, s in enumerate(spans)
    }


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        (
            f32((0, 64), (64, 128)),
            100,
            r"is truncated: tensor t1.lora_A.weight ends at byte 128 of the data, but the file holds 100",
        ),
        (f32((0, 64), (32, 96)), 96, r"damaged: tensor t1.lora_A.weight overlaps tensor t0.lora_A.weight"),
        (f32((0, 64), (64, 128)), 200, r"damaged: 72 bytes after the last tensor"),
        (f32((0, 64), (80, 144)), 144, r"damaged: 16 stray bytes before tensor t1.lora_A.weight"),
        (f32((0, 32)), 32, r"Tensor t0.lora_A.weight \(F32 \[4, 4\]\) needs 64 bytes, but its offsets give 32"),
        (f32((0, 64), shape=(4, "4")), 64, r"Tensor t0.lora_A.weight has no valid shape"),
        (
            {"t.lora_A.weight": {"dtype": "Q4", "shape": [4], "data_offsets": [0, 2]}},
            2,
            "a dtype the studio does not read",
        ),
    ],
)
def test_a_damaged_file_is_refused_in_the_admin_saying_what_is_wrong(admin_client, lora_root, header, data, message):
    write_raw(lora_root / "flux" / "damaged.safetensors", header, bytes(data))
    assert re.search(message, admin_save(admin_client, "flux/damaged.safetensors"))
    assert not BrandLora.objects.exists()


def test_a_lora_cut_short_in_copying_is_refused(admin_client, flux_lora_file, lora_root) -> None:
    path = lora_root / flux_lora_file
    path.write_bytes(path.read_bytes()[:-100])
    assert "is truncated" in admin_save(admin_client, flux_lora_file)


# --- LoRAs trained elsewhere: converted to the model's layout and checked against its widths

TINY_FLUX = "Tiny FLUX (random weights)"
FLUX_FORMATS = {"kohya": kohya_flux, "ai-toolkit": ai_toolkit_flux, "xlabs": xlabs_flux}


@pytest.mark.parametrize("fmt", sorted(FLUX_FORMATS))
def test_a_flux_lora_trained_elsewhere_with_the_models_widths_is_accepted(admin_client, lora_root, fmt) -> None:
    write_lora(lora_root / "flux" / "brand.safetensors", FLUX_FORMATS[fmt]())
    assert admin_save(admin_client, "flux/brand.safetensors") == ""
    assert BrandLora.objects.get().file_format == fmt


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (
            kohya_flux(width=64, mlp=256),
            "lora_unet_double_blocks_0_img_attn_qkv: expected 32 inputs "
            "(as transformer.transformer_blocks.0.attn.to_q), found 64",
        ),
        # FLUX.1's own widths, which diffusers' kohya converter assumes whatever the model
        (
            kohya_flux(width=3072, mlp=12288, rank=1),
            "lora_unet_double_blocks_0_img_attn_qkv: expected 32 inputs "
            "(as transformer.transformer_blocks.0.attn.to_q), found 3072",
        ),
        (
            kohya_flux(mlp=64),
            "lora_unet_single_blocks_0_linear1: expected 224 outputs "
            "(to_q 32 + to_k 32 + to_v 32 + proj_mlp 128), found 160",
        ),
        (
            ai_toolkit_flux(width=48, mlp=192),
            "diffusion_model.double_blocks.0.img_attn.qkv: expected 32 inputs "
            "(as transformer.transformer_blocks.0.attn.to_q), found 48",
        ),
        (
            xlabs_flux(width=64),
            "double_blocks.0.processor.proj_lora1: expected 32 inputs "
            "(as transformer.transformer_blocks.0.attn.to_out.0), found 64",
        ),
        (
            kohya_flux() | {"lora_unet_double_blocks_0_img_attn_qkv.dora_scale": (1, 32)},
            f"The LoRA has tensors the engine cannot place in {TINY_FLUX}: "
            "lora_unet_double_blocks_0_img_attn_qkv.dora_scale",
        ),
        (
            {"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": (2, 32)},
            "lora_unet_double_blocks_0_img_attn_qkv has a down tensor but no up tensor",
        ),
        (
            {
                "lora_unet_double_blocks_7_img_attn_qkv.lora_down.weight": (2, 32),
                "lora_unet_double_blocks_7_img_attn_qkv.lora_up.weight": (96, 2),
            },
            "lora_unet_double_blocks_7_img_attn_qkv: transformer.transformer_blocks.7.attn.to_q "
            f"is not a linear or conv layer of {TINY_FLUX}",
        ),
    ],
)
def test_a_flux_lora_trained_elsewhere_that_does_not_fit_is_refused_naming_the_layer(
    admin_client, lora_root, shapes, message
):
    write_lora(lora_root / "flux" / "other.safetensors", shapes)
    assert f"The LoRA does not fit the installed models: {TINY_FLUX}: {message}" in admin_save(
        admin_client, "flux/other.safetensors"
    )


@pytest.fixture(scope="module")
def tiny_sdxl_dir(tmp_path_factory) -> Path:
    from generation.devtools.tiny import build_tiny_sdxl

    return build_tiny_sdxl(tmp_path_factory.mktemp("models") / "tiny-sdxl")


@pytest.fixture
def sdxl_model(tiny_sdxl_dir, lora_root) -> ImageModel:
    (lora_root / "sdxl").mkdir()
    return ImageModel.objects.create(
        key="tiny-sdxl",
        name="Tiny SDXL",
        family="sdxl",
        local_path=str(tiny_sdxl_dir),
        license_name="MIT",
        commercial_use=True,
    )


@pytest.mark.parametrize("sgm", [True, False], ids=["stability-names", "diffusers-names"])
def test_a_kohya_sdxl_lora_with_the_models_widths_is_accepted(admin_client, lora_root, sdxl_model, sgm) -> None:
    write_lora(lora_root / "sdxl" / "brand.safetensors", kohya_sdxl(sgm=sgm))
    assert admin_save(admin_client, "sdxl/brand.safetensors", family="sdxl") == ""
    assert BrandLora.objects.get().file_format == "kohya"


def test_a_kohya_sdxl_lora_of_other_widths_is_refused_naming_the_layer(admin_client, lora_root, sdxl_model) -> None:
    write_lora(lora_root / "sdxl" / "wide.safetensors", kohya_sdxl(sgm=True, width=64))
    assert (
        "Tiny SDXL: lora_unet_input_blocks_3_1_proj_in: expected 32 inputs "
        "(as unet.down_blocks.1.attentions.0.proj_in), found 64"
    ) in admin_save(admin_client, "sdxl/wide.safetensors", family="sdxl")


def test_a_diffusers_sdxl_lora_of_another_unet_is_refused_by_shape(admin_client, lora_root, sdxl_model) -> None:
    # Same layer names, other widths: a UNet with the tiny SDXL's blocks twice as wide.
    write_lora(
        lora_root / "sdxl" / "other.safetensors",
        {
            "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": (4, 64),
            "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight": (64, 4),
        },
    )
    assert (
        "Tiny SDXL: unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q: expected 32 inputs"
        in admin_save(admin_client, "sdxl/other.safetensors", family="sdxl")
    )


def test_a_kohya_sdxl_lora_in_stability_names_loads_in_the_engine(tiny_sdxl_dir, tmp_path) -> None:
    from generation.engine import engine_class
    from generation.engine.types import GenerationRequest, LoraSpec

    engine = engine_class("sdxl")(tiny_sdxl_dir, device="cpu")
    path = write_lora(tmp_path / "kohya.safetensors", kohya_sdxl(sgm=True))

    def render(loras) -> bytes:
        images = []
        request = GenerationRequest("a gear", "", 64, 64, 2, 3.5, [5], loras=loras)
        engine.generate(request, max_batch=1, on_step=lambda s, t: None, on_images=lambda i, b: images.extend(b))
        return images[0].tobytes()

    assert render([]) != render([LoraSpec(path, 1.0)])


# --- at job time


@pytest.mark.parametrize("fmt", sorted(FLUX_FORMATS))
def test_a_job_renders_with_a_flux_lora_trained_elsewhere(lora_root, preset, fmt) -> None:

    write_lora(lora_root / "flux" / f"{fmt}.safetensors", FLUX_FORMATS[fmt](), seed=3)
    styled_lora = lora(file=f"flux/{fmt}.safetensors")
    styled_lora.full_clean()
    styled_lora.save()
    plain = GenerationJobFactory(preset=preset, images_total=1)
    PresetLora.objects.create(preset=preset, lora=styled_lora, strength=1.0)
    styled = GenerationJobFactory(preset=preset, images_total=1)
    for job in (plain, styled):
        worker_run.run_job(str(job.pk), worker="gpu@test")
        job.refresh_from_db()
        assert job.status == "complete", job.error
    assert plain.images.get().file.read() != styled.images.get().file.read()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("wider", "lora_unet_double_blocks_0_img_attn_qkv: expected 32 inputs"),
        ("gone", "LoRA file brand.safetensors does not exist on this worker"),
        ("diffusers-wider", "its layers do not match this model (RuntimeError: "),
    ],
)
def test_a_lora_that_stopped_fitting_after_its_save_fails_the_job_readably_without_paths(
    lora_root, preset, damage, message
):
    """The save check is the gate; a file swapped or deleted later still fails with a message for designers."""

    path = write_lora(lora_root / "flux" / "brand.safetensors", kohya_flux())
    brand = lora(file="flux/brand.safetensors")
    brand.full_clean()
    brand.save()
    if damage == "wider":
        write_lora(path, kohya_flux(width=64, mlp=256))
    elif damage == "gone":
        pass  # deleted after the job is submitted: a job submitted without the file leaves it out
    else:
        write_lora(
            path,
            {
                "transformer.transformer_blocks.0.attn.to_q.lora_A.weight": (2, 64),
                "transformer.transformer_blocks.0.attn.to_q.lora_B.weight": (64, 2),
            },
        )
    PresetLora.objects.create(preset=preset, lora=brand, strength=1.0)
    job = GenerationJobFactory(preset=preset, images_total=1)
    if damage == "gone":
        path.unlink()
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    assert job.status == "failed" and message in job.error
    assert "brand.safetensors" in job.error and str(lora_root) not in job.error and "/" not in job.error


def test_a_lora_that_fits_one_of_its_familys_models_is_kept_for_that_one_only(
    flux_lora_file, settings, tmp_path, tiny_flux_dir, preset
) -> None:
    """Checked against each installed model: jobs on a model it does not fit leave it out."""
    from generation.jobs import recipe

    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "tiny-flux").symlink_to(tiny_flux_dir)
    (models_dir / "demo-brand").symlink_to(Path(__file__).resolve().parents[2] / "demo" / "brand-model")
    settings.STUDIO_MODELS_DIR = models_dir
    entry = lora(file=flux_lora_file)
    entry.full_clean()
    entry.save()
    assert entry.fits == ["tiny-flux"]
    assert entry.fit_notes and entry.fit_notes[0].startswith("Demo brand")
    PresetLora.objects.create(preset=preset, lora=entry, strength=0.8)
    tiny, demo = ImageModel.objects.get(key="tiny-flux"), ImageModel.objects.get(key="demo-brand")
    assert [pl.lora for pl in recipe.choose_loras(preset, tiny)] == [entry]
    assert recipe.choose_loras(preset, demo) == []
