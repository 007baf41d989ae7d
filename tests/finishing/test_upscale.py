"""Upscalers and the refiner: files read with spandrel (and refused with reasons), the size stage
with its passes and tiles, the admin, the shipped demo upscaler, and the refiner pass."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from django.conf import settings
from django.urls import reverse
from PIL import Image

from generation.devtools.demo_kit import draw_icon
from generation.engine import EngineError, engine_class
from generation.engine.options import option_errors
from generation.engine.types import GenerationRequest
from generation.finishing import refine, upscale
from generation.finishing.inspect import inspect_in_subprocess, read_upscaler
from generation.finishing.plan import UpscalerRef
from generation.models import Upscaler
from tests.factories import PASSWORD, UserFactory
from tests.upscalers import (
    build_malicious_pth,
    build_restoration_model,
    build_text_file,
    build_tiny_esrgan,
    build_truncated,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO_FILE = Path(settings.STUDIO_UPSCALERS_DIR) / "demo-icons-4x.safetensors"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("upscalers")
    build_tiny_esrgan(folder / "tiny-4x.safetensors")
    build_tiny_esrgan(folder / "tiny-4x.pth")
    build_restoration_model(folder / "denoise-1x.safetensors")
    build_text_file(folder / "notes.pth")
    build_truncated(folder / "cut.safetensors")
    return folder


@pytest.fixture
def upscalers_dir(settings, folder: Path) -> Path:
    settings.STUDIO_UPSCALERS_DIR = folder
    return folder


def ref(file: str = "tiny-4x.safetensors") -> UpscalerRef:
    return UpscalerRef(key="tiny", name="Tiny", file=file, scale=4, architecture="ESRGAN", half=True)


def icon(size: int = 64) -> Image.Image:
    return draw_icon("blue", "star", size=size)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


# --- reading a file


@pytest.mark.parametrize("file", ["tiny-4x.safetensors", "tiny-4x.pth"])
def test_it_reads_the_scale_and_architecture_from_the_file(folder: Path, file: str) -> None:
    info = read_upscaler(folder / file)
    assert info == {"scale": 4, "architecture": "ESRGAN", "half": True, "input_channels": 3, "output_channels": 3}


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("notes.pth", "notes.pth is not an upscaler spandrel can load: "),
        ("cut.safetensors", "cut.safetensors is not an upscaler spandrel can load: "),
        ("denoise-1x.safetensors", "denoise-1x.safetensors is a 1x restoration model (DnCNN)"),
    ],
)
def test_files_that_are_not_upscalers_are_refused_saying_why_without_server_paths(folder, file, message) -> None:
    with pytest.raises(ValueError, match=r"^" + message.replace("(", r"\(").replace(")", r"\)")) as caught:
        read_upscaler(folder / file)
    assert str(folder) not in str(caught.value) and "/" not in str(caught.value)


def test_other_extensions_are_refused_before_loading(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"TorchScript would run code")
    with pytest.raises(ValueError, match="use a .pth or .safetensors file"):
        read_upscaler(tmp_path / "model.pt")


def test_a_pickle_that_runs_code_is_refused_and_its_code_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = build_malicious_pth(tmp_path / "evil.pth", marker)
    with pytest.raises(ValueError, match="is forbidden"):
        read_upscaler(path)
    assert not marker.exists()


def test_the_web_side_reads_a_file_in_a_child_process_without_importing_torch(folder: Path) -> None:
    code = (
        "import json, sys; from pathlib import Path\n"
        "from generation.finishing.inspect import inspect_in_subprocess\n"
        f"info = inspect_in_subprocess(Path({str(folder / 'tiny-4x.safetensors')!r}))\n"
        "print(json.dumps({'info': info, 'torch': 'torch' in sys.modules, 'spandrel': 'spandrel' in sys.modules}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer == {
        "info": {"scale": 4, "architecture": "ESRGAN", "half": True, "input_channels": 3, "output_channels": 3},
        "torch": False,
        "spandrel": False,
    }


def test_the_child_process_runs_without_django_settings(folder: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    command = [sys.executable, "-m", "generation.finishing.inspect", str(folder / "denoise-1x.safetensors")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 1 and "restoration model" in json.loads(done.stdout.splitlines()[-1])["error"]


def test_the_childs_refusal_and_a_timeout_are_value_errors(folder: Path) -> None:
    with pytest.raises(ValueError, match="notes.pth is not an upscaler spandrel can load"):
        inspect_in_subprocess(folder / "notes.pth")
    with pytest.raises(ValueError, match=r"tiny-4x.safetensors could not be read: checking it took more than"):
        inspect_in_subprocess(folder / "tiny-4x.safetensors", timeout=0.01)


# --- the size stage


@pytest.mark.parametrize("file", ["tiny-4x.safetensors", "tiny-4x.pth"])
def test_one_4x_pass_takes_a_64_px_render_to_256(upscalers_dir, file: str) -> None:
    image, record = upscale.to_size(icon(), (256, 256), ref(file), device="cpu")
    assert image.size == (256, 256) and image.mode == "RGB"
    assert record == {
        "method": "ESRGAN 4x (Tiny)",
        "passes": 1,
        "tile": 256,
        "half": False,
        "device": "cpu",
        "peak_memory_mb": record["peak_memory_mb"],
    }


def test_64_px_to_1024_takes_two_passes_and_lands_on_the_exact_size(upscalers_dir) -> None:
    image, record = upscale.to_size(icon().convert("RGBA"), (1024, 1024), ref(), device="cpu")
    assert image.size == (1024, 1024) and image.mode == "RGB" and record["passes"] == 2
    wide, record = upscale.to_size(icon(), (1000, 600), ref(), device="cpu")
    assert wide.size == (1000, 600) and record["passes"] == 2  # 64 -> 256 -> 1024 wide, then Lanczos


def test_a_pass_that_would_mostly_be_thrown_away_is_left_to_lanczos(upscalers_dir) -> None:
    # 64 -> 256 by the model, then 2x by Lanczos, not a 1024 px pass cut down to 512.
    image, record = upscale.to_size(icon(), (512, 512), ref(), device="cpu")
    assert image.size == (512, 512) and record["passes"] == 1
    # A 4x model still serves a 2x enlargement: its one pass, then down to the size.
    image, record = upscale.to_size(icon(), (128, 128), ref(), device="cpu")
    assert image.size == (128, 128) and record["passes"] == 1


def test_without_an_upscaler_it_is_lanczos_and_says_so() -> None:
    image, record = upscale.to_size(icon(), (256, 256), None, device="cpu")
    assert image.size == (256, 256) and record["method"] == "Lanczos" and record["passes"] == 0
    expected = icon().resize((256, 256), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(image), np.asarray(expected))


def test_tiles_meet_without_seams(upscalers_dir) -> None:
    descriptor = upscale.load(upscalers_dir / "tiny-4x.safetensors", torch.device("cpu"))
    image = draw_icon("orange", "heart", size=100).crop((0, 0, 100, 72))  # not a multiple of the tile
    whole = np.asarray(upscale.run_tiled(descriptor, image, tile=0), dtype=np.int16)
    tiled = np.asarray(upscale.run_tiled(descriptor, image, tile=32, overlap=24), dtype=np.int16)
    assert whole.shape == tiled.shape == (288, 400, 3)
    assert np.abs(whole - tiled).max() <= 2 and np.abs(whole - tiled).mean() < 0.05


def test_a_model_with_size_requirements_gets_padded_tiles_and_the_padding_cut_off(tmp_path) -> None:
    # Real-ESRGAN 2x models unshuffle their input: spandrel asks for sides in multiples of 4.
    build_tiny_esrgan(tmp_path / "tiny-2x.safetensors", scale=2, unshuffle=2)
    descriptor = upscale.load(tmp_path / "tiny-2x.safetensors", torch.device("cpu"))
    assert (descriptor.scale, descriptor.size_requirements.multiple_of) == (2, 4)
    image = draw_icon("green", "circle", size=63).crop((0, 0, 63, 37))
    tiled = upscale.run_tiled(descriptor, image, tile=30, overlap=8)  # tiles of 30 + margins: never a multiple of 4
    whole = upscale.run_tiled(descriptor, image, tile=0)
    assert tiled.size == whole.size == (126, 74)
    assert np.abs(np.asarray(tiled, dtype=np.int16) - np.asarray(whole, dtype=np.int16)).mean() < 0.5


def test_loaded_models_are_kept_two_at_a_time(upscalers_dir) -> None:
    upscale.clear_cache()
    cpu = torch.device("cpu")
    first = upscale.load(upscalers_dir / "tiny-4x.safetensors", cpu)
    assert upscale.load(upscalers_dir / "tiny-4x.safetensors", cpu) is first
    upscale.load(upscalers_dir / "tiny-4x.pth", cpu)
    build_tiny_esrgan(upscalers_dir / "tiny-4x-again.safetensors")
    upscale.load(upscalers_dir / "tiny-4x-again.safetensors", cpu)
    assert upscale.load(upscalers_dir / "tiny-4x.safetensors", cpu) is not first  # dropped, loaded again


def test_out_of_memory_retries_the_pass_with_smaller_tiles(upscalers_dir, monkeypatch) -> None:
    real, tiles = upscale.run_tiled, []

    def short_of_memory(descriptor, image, *, tile, **kwargs):
        tiles.append(tile)
        if tile > 64:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(descriptor, image, tile=tile, **kwargs)

    monkeypatch.setattr(upscale, "run_tiled", short_of_memory)
    image, record = upscale.to_size(icon(), (256, 256), ref(), device="cpu")
    assert image.size == (256, 256) and tiles == [256, 128, 64] and record["tile"] == 64


def test_a_file_damaged_after_it_was_registered_fails_with_a_readable_error(tmp_path, settings) -> None:
    settings.STUDIO_UPSCALERS_DIR = tmp_path
    build_truncated(tmp_path / "broken.safetensors")
    with pytest.raises(ValueError, match=r"^broken.safetensors is not an upscaler spandrel can load: SafetensorError"):
        upscale.to_size(icon(), (256, 256), ref("broken.safetensors"), device="cpu")


def test_a_plan_naming_a_file_outside_the_folder_is_refused(upscalers_dir) -> None:
    with pytest.raises(ValueError, match="not in this worker's upscalers folder"):
        upscale.to_size(icon(), (256, 256), ref("../../etc/passwd"), device="cpu")


# --- the admin


@pytest.fixture
def admin_client(client, db):
    UserFactory(username="ada", is_staff=True, is_superuser=True)
    assert client.login(username="ada", password=PASSWORD)
    return client


def admin_add(client, file: str) -> str:
    """Adds an upscaler through the admin's form; its error text, or "" when it was saved."""
    data = {"name": "Tiny", "key": "tiny", "file": file, "enabled": "on"}
    data |= {"license_name": "MIT", "commercial_use": "on", "license_notice": ""}
    response = client.post(reverse("admin:generation_upscaler_add"), data)
    if response.status_code == 302:
        return ""
    assert response.status_code == 200
    return " ".join(str(e) for e in response.context["adminform"].form.errors.get("file", []))


def test_the_admin_saves_an_upscaler_with_what_its_file_holds(admin_client, upscalers_dir) -> None:
    assert admin_add(admin_client, "tiny-4x.safetensors") == ""
    saved = Upscaler.objects.get(key="tiny")
    assert (saved.scale, saved.architecture, saved.supports_half) == (4, "ESRGAN", True)
    assert str(saved) == "Tiny (4x)"


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("denoise-1x.safetensors", "denoise-1x.safetensors is a 1x restoration model (DnCNN)"),
        ("notes.pth", "notes.pth is not an upscaler spandrel can load"),
        ("missing.pth", "No .pth or .safetensors file at missing.pth in the upscalers folder."),
        ("../outside.pth", "The upscaler must be a file inside the upscalers folder."),
        ("/etc/passwd", "not an absolute path"),
    ],
)
def test_the_admin_refuses_a_bad_file_saying_why(admin_client, upscalers_dir, file: str, message: str) -> None:
    assert message in admin_add(admin_client, file)
    assert not Upscaler.objects.filter(key="tiny").exists()


# --- the demo upscaler


@pytest.mark.django_db
def test_the_demo_upscaler_ships_registered_small_and_as_its_row_says() -> None:
    row = Upscaler.objects.get(key="demo-icons-4x")
    assert row.path == DEMO_FILE and DEMO_FILE.stat().st_size < 2 * 2**20
    assert row.commercial_use and (DEMO_FILE.parent / "README.md").is_file()
    info = read_upscaler(DEMO_FILE)
    assert (row.scale, row.architecture, row.supports_half) == (info["scale"], info["architecture"], info["half"])


def test_the_demo_upscaler_beats_lanczos_on_a_demo_icon() -> None:
    demo = UpscalerRef("demo-icons-4x", "Demo icons 4x", "demo-icons-4x.safetensors", 4, "RealESRGAN Compact", True)
    for colour, shape in [("green", "triangle"), ("purple", "plus")]:
        target = draw_icon(colour, shape, size=256)
        small = target.resize((64, 64), Image.Resampling.BICUBIC)
        ours, record = upscale.to_size(small, (256, 256), demo, device="cpu")
        lanczos = small.resize((256, 256), Image.Resampling.LANCZOS)
        assert record["passes"] == 1
        assert psnr(np.asarray(ours), np.asarray(target)) > psnr(np.asarray(lanczos), np.asarray(target))


# --- the refiner


def flux_request(**overrides) -> GenerationRequest:
    values = {"prompt": "a blue circle", "negative_prompt": "", "width": 64, "height": 64, "steps": 10}
    return GenerationRequest(**(values | {"guidance_scale": 3.5, "seeds": [1, 2]} | overrides))


def test_the_refiner_keeps_the_render_size_and_changes_the_image_a_little(tiny_flux_dir) -> None:
    engine = engine_class("flux")(tiny_flux_dir, device="cpu", options={"native_size": 32})
    request = flux_request()
    renders: list[Image.Image] = []
    engine.generate(request, max_batch=2, on_step=lambda s, t: None, on_images=lambda f, i: renders.extend(i))
    assert [r.size for r in renders] == [(32, 32), (32, 32)]  # the engine returns its render size
    refined, record = refine.refine(engine, renders, request, 0.3)
    assert [r.size for r in refined] == [(32, 32), (32, 32)]
    assert record == {"strength": 0.3, "steps": 10, "steps_run": 3, "pipeline": "FluxImg2ImgPipeline"}
    a, b = (np.asarray(r, dtype=np.int16) for r in renders)
    changed = np.abs(np.asarray(refined[0], dtype=np.int16) - a).mean()
    assert 0 < changed < np.abs(a - b).mean()  # changed, yet closer to its render than another seed's
    again, _ = refine.refine(engine, renders, request, 0.3)
    assert np.array_equal(np.asarray(again[0]), np.asarray(refined[0]))  # seeded: the same pass twice


def test_a_family_without_img2img_has_no_refiner(tiny_flux_dir, monkeypatch) -> None:
    engine = engine_class("flux")(tiny_flux_dir, device="cpu")
    monkeypatch.setattr(type(engine), "img2img_class", None)
    with pytest.raises(EngineError, match="flux has no img2img pipeline; the refiner is skipped"):
        engine.refine([icon()], flux_request(), strength=0.3)


def test_an_sdxl_entry_may_name_a_refiner_folder_and_only_sdxl() -> None:
    # Only the option is checked: no SDXL refiner weights exist offline.
    assert option_errors("sdxl", {"refiner": "/models/sdxl-refiner-1.0"}) == []
    assert option_errors("sdxl", {"refiner": ""}) == ["refiner must be a non-empty text, not ''."]
    assert "'refiner' is not an option of" in option_errors("flux", {"refiner": "/models/x"})[0]
