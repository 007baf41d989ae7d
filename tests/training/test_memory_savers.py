"""The training memory plan from the run form to the trainer: shown before Start, recorded on
the run, a run that cannot fit refused with one that would, and each saver applied on the tiny
FLUX: gradient checkpointing keeps the loss curve, an int8 base still learns, and what this
worker cannot run is skipped with a note."""

import numpy as np
import pytest
import torch
from django.urls import reverse

from generation.devtools.published import components_of, published_models
from generation.engine import engine_class
from generation.engine.types import GenerationRequest, LoraSpec
from generation.models import ImageModel, JobStatus, TrainingRun
from generation.training import plans as training_plans
from generation.training import services as training_services
from generation.training.lora import Trainer, run_training
from generation.training.objectives import FluxObjective
from generation.training.savers import Savers
from tests.training.test_training import add_icons

pytestmark = pytest.mark.django_db

PARAMS = {"steps": 3, "resolution": 64, "batch_size": 2, "sample_every": 3, "checkpoint_every": 3}


@pytest.fixture
def ready_set(training_set, lora_root):
    add_icons(training_set, 24)
    return training_set


def start(training_set, alice, **plan) -> TrainingRun:
    run = training_services.run_create(
        training_set=training_set,
        model=ImageModel.objects.get(key="tiny-flux"),
        user=alice,
        overrides=PARAMS | {"learning_rate": 2e-2, "sample_steps": 2},
    )
    if plan:
        TrainingRun.objects.filter(pk=run.pk).update(memory_plan=plan)
    return run


def test_a_run_records_its_plan_and_the_form_shows_it_before_start(ready_set, alice, settings, client) -> None:
    settings.STUDIO_WORKER_CARDS = "a10g,t4"
    run = start(ready_set, alice)
    assert run.memory_plan["card"] == "t4" and run.memory_plan["fits"]  # the smallest card a run may land on
    assert run.memory_plan["savers"] == {"cached_embeddings": False, "adam8bit": False, "checkpointing": False}
    ImageModel.objects.filter(family="flux").exclude(key="tiny-flux").update(enabled=False)  # the form's first
    client.force_login(alice.__class__.objects.create(username="staff", is_staff=True))
    page = client.get(ready_set.get_absolute_url()).content.decode()
    assert "Memory: rank 16 at" in page and "on the NVIDIA T4" in page
    assert "LoRAs for Tiny FLUX" in client.get(reverse("training")).content.decode()


def test_a_run_that_cannot_fit_the_workers_card_is_refused_with_one_that_would(
    ready_set, alice, settings, monkeypatch
) -> None:
    klein = next(m for m in published_models() if m["key"] == "flux2-klein-4b")
    monkeypatch.setattr(training_plans, "installed_components", lambda model: components_of(klein))
    settings.STUDIO_WORKER_CARDS = "4"
    with pytest.raises(training_services.TrainingError, match=r"4 GB card .* It fits at rank \d+ at \d+ px"):
        training_services.run_create(
            training_set=ready_set,
            model=ImageModel.objects.get(key="tiny-flux"),
            user=alice,
            overrides={"resolution": 1024, "rank": 16},
        )
    assert not TrainingRun.objects.exists()


def losses_and_saved_bytes(tiny_flux_dir, *, checkpointing: bool) -> tuple[list[float], int]:
    """A few steps of the objective on one latent; the bytes autograd keeps for the backward pass."""
    from peft import LoraConfig

    torch.manual_seed(0)
    pipe = FluxObjective.pipeline_class.from_pretrained(tiny_flux_dir)
    objective = FluxObjective(pipe, max_sequence_length=32)
    network = objective.model.requires_grad_(False)
    network.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=["to_q", "to_k"]))
    if checkpointing:
        network.enable_gradient_checkpointing()
    network.train()
    latents = objective.latents(torch.rand(1, 3, 64, 64) * 2 - 1)
    cond = objective.embed(["a flat icon"])
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-2)
    losses, saved = [], 0

    def pack(tensor):
        nonlocal saved
        saved += tensor.numel() * tensor.element_size()
        return tensor

    for step in range(3):
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = objective.loss(latents, cond, torch.tensor([0]), torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, saved


def test_gradient_checkpointing_keeps_the_loss_curve_and_keeps_fewer_activations(tiny_flux_dir) -> None:
    plain, plain_bytes = losses_and_saved_bytes(tiny_flux_dir, checkpointing=False)
    checkpointed, checkpointed_bytes = losses_and_saved_bytes(tiny_flux_dir, checkpointing=True)
    assert np.allclose(plain, checkpointed, rtol=1e-5, atol=1e-6)
    assert checkpointed_bytes < plain_bytes / 2


def test_an_int8_base_is_quantized_under_the_lora_which_learns_what_the_full_precision_one_does(
    ready_set, alice, tiny_flux_dir, monkeypatch
) -> None:
    quantized = []
    real = Savers.before_training

    def spy(savers, pipe, network):
        real(savers, pipe, network)
        quantized.append(type(network.transformer_blocks[0].attn.to_q.weight).__name__)

    monkeypatch.setattr(Savers, "before_training", spy)
    runs = [start(ready_set, alice, savers={"checkpointing": True}, base=base) for base in ("int8", "")]
    for run in runs:
        run_training(str(run.pk), worker="gpu@test")
        run.refresh_from_db()
        assert run.status == JobStatus.COMPLETE, run.error
    assert quantized[0] == "Int8Tensor" and quantized[1] == "Parameter"  # torchao's int8 weights under the LoRA
    int8_lora, full_lora = (run.lora for run in runs)
    base, with_int8, with_full = (draw(tiny_flux_dir, loras) for loras in ([], [int8_lora], [full_lora]))
    # The tolerance: the two LoRAs draw closer to each other than a third of what either changes.
    assert np.abs(with_full - base).mean() > 0.1
    assert np.abs(with_int8 - with_full).mean() < np.abs(with_full - base).mean() / 3


def draw(folder, loras) -> np.ndarray:
    engine = engine_class("flux")(folder, device="cpu")
    request = GenerationRequest("bsicon, a flat blue circle icon", "", 64, 64, 2, 3.5, [7])
    request = GenerationRequest(**{**request.__dict__, "loras": [LoraSpec(lora.path, 1.0) for lora in loras]})
    images: list = []
    engine.generate(request, max_batch=1, on_step=lambda s, t: None, on_images=lambda f, i: images.extend(i))
    return np.asarray(images[0], dtype=float)


def test_savers_this_worker_cannot_run_are_skipped_with_a_note_on_the_run(ready_set, alice, monkeypatch) -> None:
    optimizers = []
    real = Trainer.train

    def spy(trainer):
        real(trainer)
        optimizers.append(trainer.savers.adam8bit)

    monkeypatch.setattr(Trainer, "train", spy)
    run = start(ready_set, alice, savers={"adam8bit": True, "cached_embeddings": True}, base="nf4")
    run_training(str(run.pk), worker="gpu@test")
    run.refresh_from_db()
    assert run.status == JobStatus.COMPLETE, run.error
    assert optimizers == [False]
    assert any("8-bit AdamW (bitsandbytes) needs a CUDA worker" in note for note in run.notes)
    assert any("nf4 base weights (bitsandbytes) need a CUDA worker" in note for note in run.notes)


def test_an_encoders_output_moved_back_to_the_card_keeps_its_class() -> None:
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    from generation.training.savers import _moved

    output = BaseModelOutputWithPooling(last_hidden_state=torch.ones(1, 2), pooler_output=torch.zeros(1))
    moved = _moved((output, [torch.ones(1)], {"mask": torch.ones(1, dtype=torch.long)}), "cpu")
    assert isinstance(moved[0], BaseModelOutputWithPooling) and moved[0].pooler_output.shape == (1,)
    assert moved[2]["mask"].dtype == torch.long
