"""GGUF transformers, the files ComfyUI users have: read and checked without torch when an entry
names one, loaded through diffusers' GGUFQuantizationConfig, close to the full-precision model in
less memory, with LoRAs still working."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from generation.devtools.gguf import build_tiny_gguf
from generation.devtools.loras import make_lora
from generation.devtools.tiny import build_tiny_sdxl
from generation.engine import EngineError
from generation.engine.flux import FluxEngine
from generation.engine.types import LoraSpec
from generation.gguf_files import GgufError, check_gguf, read_gguf
from generation.models import ImageModel
from tests.admin_forms import admin_change
from tests.engine.test_quantized import PSNR_FLOOR, psnr, render
from tests.factories import UserFactory


@pytest.fixture(scope="module")
def tiny_gguf(tiny_flux_dir: Path, tmp_path_factory) -> Path:
    return build_tiny_gguf(tiny_flux_dir, tmp_path_factory.mktemp("gguf") / "tiny-flux-Q8_0.gguf")


def test_a_gguf_file_is_read_for_its_family_and_block_type(tiny_gguf) -> None:
    info = check_gguf(tiny_gguf, "flux", "FLUX.1")
    assert "flux" in info.families and info.main_type == "Q8_0" and info.bytes < info.params * 2


def test_a_gguf_header_is_read_once_per_version_of_the_file(tiny_gguf, tmp_path, monkeypatch) -> None:
    from generation import gguf_files

    copy = shutil.copy(tiny_gguf, tmp_path / "copy.gguf")
    reads = []
    real = gguf_files.GGUFReader
    monkeypatch.setattr(gguf_files, "GGUFReader", lambda path: reads.append(path) or real(path))
    assert read_gguf(Path(copy)) == read_gguf(Path(copy)) and len(reads) == 1
    Path(copy).write_bytes(Path(copy).read_bytes()[:100])  # changed: read again, and refused
    with pytest.raises(GgufError):
        read_gguf(Path(copy))
    assert len(reads) == 2


@pytest.mark.parametrize(
    ("damage", "message"),
    [("truncate", "not a readable GGUF file"), ("rename", "not a .gguf file"), ("garbage", "not a readable GGUF")],
)
def test_a_damaged_or_foreign_file_is_refused_with_the_reason(tiny_gguf, tmp_path, damage, message) -> None:
    data = tiny_gguf.read_bytes()
    target = tmp_path / ("x.safetensors" if damage == "rename" else "x.gguf")
    target.write_bytes(
        data[: len(data) // 2] if damage == "truncate" else (b"GGUF" + b"\xff" * 64 if damage == "garbage" else data)
    )
    with pytest.raises(GgufError, match=message):
        read_gguf(target)


def test_a_gguf_of_another_family_is_refused(tmp_path) -> None:
    unet = build_tiny_gguf(build_tiny_sdxl(tmp_path / "sdxl"), tmp_path / "unet.gguf", arch="sdxl")
    with pytest.raises(GgufError, match="a transformer of sdxl, not of FLUX.1"):
        check_gguf(unet, "flux", "FLUX.1")


def test_a_gguf_transformer_draws_close_to_the_full_model_in_less_memory(tiny_flux_dir, tiny_gguf) -> None:
    plain = FluxEngine(tiny_flux_dir, device="cpu")
    quantized = FluxEngine(tiny_flux_dir, device="cpu", options={"gguf": str(tiny_gguf)})
    assert psnr(render(plain), render(quantized)) >= PSNR_FLOOR
    assert quantized.memory_bytes < plain.memory_bytes
    lora = make_lora("flux", tiny_flux_dir, tiny_gguf.parent / "style", seed=1)
    styled = render(quantized, loras=[LoraSpec(lora, 1.0)])
    assert psnr(styled, render(quantized)) < 40  # the LoRA acts on the GGUF layers...
    assert psnr(styled, render(plain, loras=[LoraSpec(lora, 1.0)])) >= PSNR_FLOOR  # ...as on the full ones


def test_a_gguf_for_another_folder_fails_the_load_with_the_reason(tmp_path, tiny_flux_dir) -> None:
    unet = build_tiny_gguf(build_tiny_sdxl(tmp_path / "sdxl"), tmp_path / "unet.gguf", arch="sdxl")
    with pytest.raises(EngineError, match="does not load as"):
        FluxEngine(tiny_flux_dir, device="cpu", options={"gguf": str(unet)})


@pytest.mark.django_db
class TestTheAdmin:
    @pytest.fixture
    def admin_client(self, client, tiny_gguf, tiny_flux_dir):
        shutil.copy(tiny_gguf, tiny_flux_dir.parent / tiny_gguf.name)  # under STUDIO_MODELS_DIR
        UserFactory(username="ada", is_staff=True, is_superuser=True)
        client.login(username="ada", password="correct horse battery staple")
        return client

    def save(self, client, gguf: str):
        model = ImageModel.objects.get(key="tiny-flux")
        return admin_change(client, model, options=json.dumps({"gguf": gguf})).content.decode()

    def test_an_entry_names_a_gguf_transformer_and_its_plan_counts_it_at_its_blocks(self, admin_client, tiny_gguf):
        self.save(admin_client, tiny_gguf.name)
        model = ImageModel.objects.get(key="tiny-flux")
        assert model.options == {"gguf": tiny_gguf.name}
        page = admin_client.get(f"/admin/generation/imagemodel/{model.pk}/change/").content.decode()
        assert "transformer Q8_0 on the GPU" in page

    def test_a_missing_truncated_or_foreign_gguf_is_refused_at_save(self, admin_client, tiny_gguf, tiny_flux_dir):
        assert "gguf: no file" in self.save(admin_client, "nowhere.gguf")
        (tiny_flux_dir.parent / "half.gguf").write_bytes(tiny_gguf.read_bytes()[:1000])
        assert "not a readable GGUF file" in self.save(admin_client, "half.gguf")
        assert "gguf" not in ImageModel.objects.get(key="tiny-flux").options


@pytest.mark.parametrize(
    ("names", "family"),
    [
        (["double_blocks.0.img_attn.qkv.weight", "single_blocks.0.linear1.weight"], "flux"),  # city96's FLUX files
        (["model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"], "sd3"),
        (["input_blocks.1.1.proj_in.weight", "middle_block.1.proj_in.weight"], "sdxl"),
    ],
)
def test_a_gguf_in_its_authors_own_key_names_is_recognised(tmp_path, names, family) -> None:
    """Published GGUF files keep the original checkpoint's names, which diffusers converts on load."""
    import gguf

    path = tmp_path / "original.gguf"
    writer = gguf.GGUFWriter(str(path), arch=family)
    for name in names:
        writer.add_tensor(
            name,
            gguf.quants.quantize(np.ones((4, 32), np.float32), gguf.GGMLQuantizationType.Q8_0),
            raw_dtype=gguf.GGMLQuantizationType.Q8_0,
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert family in read_gguf(path).families
