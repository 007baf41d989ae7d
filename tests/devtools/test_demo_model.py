"""The demo brand model shipped in demo/brand-model: Fluent glyphs it draws recognisably, installed
by the set-up command (and replaced when the checkout ships a newer one), trained by a recipe
that checkpoints and resumes."""

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from generation.devtools.demo_kit import read_kit_card
from generation.devtools.demo_model import one_cycle
from generation.devtools.demo_quality import evaluate_native
from generation.models import ImageModel
from tests.icons import needs_icons

DEMO = Path(settings.STUDIO_DEMO_MODEL_DIR)


def test_the_demo_model_is_in_the_repository_and_small() -> None:
    size = sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file())
    assert (DEMO / "model_index.json").is_file() and size < 30 * 2**20


def test_its_card_names_its_subjects_and_the_glyphs_license_ships_with_it() -> None:
    card = read_kit_card(DEMO)
    assert card is not None and len(card["subjects"]) >= 24
    assert {"person", "shield", "trophy"} <= set(card["subjects"])
    assert "Microsoft" in (DEMO / "LICENSE-fluent-ui-system-icons.txt").read_text()


def test_it_draws_the_subject_and_colour_asked_for_most_of_the_time() -> None:
    subjects, _ = evaluate_native(DEMO, seeds=1, steps=20, rephrased=False)
    rates = f"nearest {subjects.nearest_accuracy:.0%}, colour {subjects.colour_accuracy:.0%}"
    print(f"\ndemo model at its native size: {rates}, mean IoU {subjects.mean_iou:.2f}")
    assert subjects.nearest_accuracy >= 0.7 and subjects.colour_accuracy >= 0.9


@pytest.mark.django_db
def test_the_set_up_command_installs_it_beside_the_tiny_model_with_its_subjects(settings, tmp_path) -> None:
    settings.STUDIO_MODELS_DIR = tmp_path
    ImageModel.objects.filter(key="demo-brand").update(subjects=["circle"])
    out = StringIO()
    call_command("build_default_model", stdout=out)
    assert (tmp_path / "demo-brand" / "model_index.json").is_file()
    assert (tmp_path / "tiny-flux" / "model_index.json").is_file()
    assert ImageModel.objects.get(key="demo-brand").subjects == list(read_kit_card(DEMO)["subjects"])
    call_command("build_default_model", stdout=out)
    assert "already at" in out.getvalue()


@pytest.fixture
def shipped(settings, tmp_path) -> Path:
    """A copy of the shipped model as a checkout holds it, installed once into a models folder."""
    folder = Path(shutil.copytree(DEMO, tmp_path / "shipped"))
    settings.STUDIO_DEMO_MODEL_DIR = folder
    settings.STUDIO_MODELS_DIR = tmp_path / "models"
    call_command("build_default_model", stdout=StringIO())
    return folder


@pytest.mark.django_db
def test_a_checkout_shipping_a_newer_demo_model_replaces_the_installed_copy(shipped, tmp_path) -> None:
    card = json.loads((shipped / "demo-kit.json").read_text())
    card["subjects"] = {"person": "person", **card["subjects"], "extra": "extra"}
    (shipped / "demo-kit.json").write_text(json.dumps(card))
    out = StringIO()
    call_command("build_default_model", stdout=out)
    assert "Installed" in out.getvalue()
    assert read_kit_card(tmp_path / "models" / "demo-brand")["subjects"] == card["subjects"]


@pytest.mark.django_db
def test_a_shipped_file_changed_at_the_same_size_is_reinstalled(shipped, tmp_path) -> None:
    weights = shipped / "vae" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # a refitted decoder: same file, same size, other bytes
    weights.write_bytes(bytes(data))
    out = StringIO()
    call_command("build_default_model", stdout=out)
    assert "Installed" in out.getvalue()
    assert (tmp_path / "models" / "demo-brand" / "vae" / weights.name).read_bytes() == bytes(data)


@needs_icons
def test_the_shipped_decoder_paints_outline_glyphs_in_their_own_colours() -> None:
    """A decoder that had seen only filled glyphs gave blue outlines back violet and green ones
    teal (52 % right), whatever a LoRA taught: outlines need a decoder that knows them."""
    right, total = decoder_colour_check(DEMO, subjects=12)
    assert right / total >= 0.95, f"{right} of {total} outline glyphs came back in their own colour"


@needs_icons
def test_refitting_the_decoder_keeps_the_encoder_and_so_the_latents(tmp_path) -> None:
    import torch
    from diffusers import AutoencoderKL

    from generation.devtools.demo_model import Plan, refit_model_decoder

    refit_model_decoder(DEMO, tmp_path / "model", plan=Plan(decoder_steps=2, batch=2), report=lambda *a: None)
    before = AutoencoderKL.from_pretrained(DEMO / "vae")
    after = AutoencoderKL.from_pretrained(tmp_path / "model" / "vae")
    pixels = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(before.encode(pixels).latent_dist.mode(), after.encode(pixels).latent_dist.mode())
        assert not torch.equal(before.decoder.conv_out.weight, after.decoder.conv_out.weight)
    assert (tmp_path / "model" / "transformer").is_dir() and read_kit_card(tmp_path / "model") == read_kit_card(DEMO)


@pytest.mark.django_db
def test_refitting_a_folder_without_a_model_says_so(tmp_path) -> None:
    with pytest.raises(CommandError, match="holds no trained demo model"):
        call_command("train_demo_model", "--refit-decoder", "--out", str(tmp_path / "none"), stdout=StringIO())


def decoder_colour_check(folder: Path, *, subjects: int) -> tuple[int, int]:
    """How many of the first `subjects` regular glyphs x brand colours come back through the
    model's VAE (at its native 64 px) judged in the colour they went in."""
    import numpy as np
    import torch
    from diffusers import AutoencoderKL
    from PIL import Image

    from generation.devtools import glyphs
    from generation.devtools.demo_kit import BACKGROUND, GLYPH_SUBJECTS, PALETTE, card_references, judge_glyph

    card = read_kit_card(folder)
    references = card_references(card)
    vae = AutoencoderKL.from_pretrained(folder / "vae")
    right = total = 0
    for subject in list(card["subjects"])[:subjects]:
        alpha = glyphs.coverage(GLYPH_SUBJECTS[subject], "regular")
        for colour, rgb in PALETTE.items():
            image = glyphs.paint(alpha, rgb, BACKGROUND, size=64)
            pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
            with torch.no_grad():
                decoded = vae.decode(vae.encode(pixels).latent_dist.mode()).sample[0]
            array = ((decoded.clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy().astype(np.uint8)
            verdict = judge_glyph(Image.fromarray(array).resize((512, 512)), references)
            right += verdict.colour == colour
            total += 1
    return right, total


@needs_icons
def test_a_few_training_steps_of_the_demo_recipe_run_end_to_end(tmp_path) -> None:
    """The recipe behind the shipped weights, shrunk to seconds: it trains and saves a pipeline."""
    from generation.devtools.demo_model import Plan, train_demo_model

    folder = train_demo_model(
        tmp_path / "model",
        templates=["{subject}, flat icon"],
        plan=Plan(subjects=3, vae_steps=2, decoder_steps=1, transformer_steps=2, batch=4, per_pair=1, width=64),
    )
    assert (folder / "model_index.json").is_file() and (folder / "vae" / "config.json").is_file()
    assert list(read_kit_card(folder)["subjects"]) == ["person", "phone", "key"]
    tokens = json.loads((folder / "tokenizer_2" / "tokenizer.json").read_text())["model"]["vocab"]
    assert ["\u2581headphones", -1.0] not in tokens and ["\u2581key", -1.0] in tokens


class Killed(Exception):
    pass


@needs_icons
def test_a_training_run_stopped_midway_resumes_from_its_last_checkpoint(tmp_path) -> None:
    from generation.devtools.demo_model import Plan, train_demo_model

    plan = Plan(
        subjects=2, vae_steps=1, decoder_steps=0, transformer_steps=4, batch=2, per_pair=1, width=64, checkpoint_every=2
    )
    seen: list[tuple[str, int]] = []

    def die_at_step_3(stage: str, step: int, total: int, loss: float) -> None:
        if (stage, step) == ("transformer", 3):
            raise Killed

    with pytest.raises(Killed):
        train_demo_model(tmp_path / "model", templates=[], plan=plan, report=die_at_step_3, checkpoints=tmp_path / "ck")
    train_demo_model(
        tmp_path / "model", templates=[], plan=plan, report=lambda *a: seen.append(a[:2]), checkpoints=tmp_path / "ck"
    )
    assert seen == [("transformer", 3), ("transformer", 4)]  # no VAE again, no step done twice
    log = (tmp_path / "ck" / "snapshots" / "log.jsonl").read_text().splitlines()
    logged = [json.loads(line)["step"] for line in log]
    assert logged == [2, 4]
    assert (tmp_path / "model" / "transformer" / "diffusion_pytorch_model.safetensors").is_file()


def test_the_learning_rate_warms_up_then_anneals_to_zero_at_the_plans_end() -> None:
    assert one_cycle(0, total=1000) == pytest.approx(1 / 25)
    assert one_cycle(50, total=1000) == pytest.approx(1.0)
    assert one_cycle(1000, total=1000) == pytest.approx(0.0)
    assert one_cycle(400, total=1000) > one_cycle(600, total=1000)


CONTROLNET = Path(settings.STUDIO_DEMO_CONTROLNET_DIR)


@pytest.mark.django_db
def test_its_canny_controlnet_ships_small_and_is_registered_for_it_alone(settings, tmp_path) -> None:
    from generation.control.addons import control_addon
    from generation.models import AddOn

    size = sum(f.stat().st_size for f in CONTROLNET.rglob("*") if f.is_file())
    assert (CONTROLNET / "config.json").is_file() and size < 8 * 2**20
    settings.STUDIO_MODELS_DIR = tmp_path
    call_command("build_default_model", stdout=StringIO())
    addon = AddOn.objects.get(key="demo-canny")
    addon.full_clean()  # the admin's checks: a FluxControlNetModel whole, fitting the installed FLUX models
    assert control_addon(ImageModel.objects.get(key="demo-brand"), "canny") == addon
    assert control_addon(ImageModel.objects.get(key="tiny-flux"), "canny") is None  # another size of FLUX
    AddOn.objects.filter(key="demo-canny").update(enabled=False)
    call_command("build_default_model", stdout=StringIO())
    assert not AddOn.objects.get(key="demo-canny").enabled  # the admin's choice outlasts a restart


def test_its_canny_controlnet_draws_a_sketch_along_its_edges() -> None:
    """A hand-drawn star, off centre: through the ControlNet the drawings cover the sketch's
    outline far better than the same prompt alone (scripts/sketch_report.py has the figures)."""
    import numpy as np

    from generation.control.sketch import prepare
    from generation.devtools.demo_kit import foreground
    from generation.devtools.demo_model import MODEL_OPTIONS
    from generation.engine import engine_class
    from generation.engine.types import ControlNetSpec, GenerationRequest
    from scripts.sketch_report import filled_outline, hand_drawn_star

    engine = engine_class("flux")(DEMO, device="cpu", options=MODEL_OPTIONS)
    sketch, target = hand_drawn_star(), filled_outline(hand_drawn_star(), 64)

    def iou(**steering) -> float:
        images: list = []
        request = GenerationRequest(
            prompt="a flat blue star icon",
            negative_prompt="",
            width=512,
            height=512,
            steps=20,
            guidance_scale=3.5,
            seeds=[0, 1, 2, 3],
            **steering,
        )
        engine.generate(request, max_batch=4, on_step=lambda *_: None, on_images=lambda _, b: images.extend(b))
        masks = [foreground(image.resize((64, 64))) for image in images]
        return float(np.mean([(m & target).sum() / max(1, (m | target).sum()) for m in masks]))

    plain = iou()
    steered = iou(
        control_image=prepare(sketch, "drawing", (512, 512)),
        control_edges="canny",
        controlnet=ControlNetSpec(CONTROLNET),
    )
    print(f"\nstar sketch IoU: {plain:.3f} without, {steered:.3f} through the canny ControlNet")
    assert steered > plain + 0.1


@needs_icons
def test_its_controlnet_trainer_saves_a_controlnet_the_engine_loads_and_resumes(tmp_path) -> None:
    from diffusers import FluxControlNetModel

    from generation.devtools.demo_controlnet import ControlPlan, train_demo_controlnet

    plan = ControlPlan(steps=2, per_pair=1, checkpoint_every=1)
    train_demo_controlnet(DEMO, tmp_path / "out", templates=[], plan=plan, checkpoints=tmp_path / "ck")
    assert FluxControlNetModel.from_pretrained(tmp_path / "out").config.num_layers == 1
    steps: list[int] = []
    longer = ControlPlan(steps=3, per_pair=1, checkpoint_every=1)
    train_demo_controlnet(
        DEMO,
        tmp_path / "out",
        templates=[],
        plan=longer,
        checkpoints=tmp_path / "ck",
        report=lambda stage, step, total, loss: steps.append(step),
    )
    assert steps == [3]  # resumed after the two steps it had made
