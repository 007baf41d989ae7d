"""The worker loads a model by its memory plan and records on the job the plan it ran with."""

from collections import OrderedDict

import pytest

from generation.memory.cards import CARDS, Card
from generation.memory.components import Component
from generation.memory.plan import plan_for
from generation.models import GenerationJob, ImageModel, JobStatus
from generation.worker import engines as worker_engines
from generation.worker import run as worker_run
from tests.factories import GenerationJobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_engines():
    worker_engines._engines.clear()
    yield
    worker_engines._engines.clear()


def run(job: GenerationJob) -> GenerationJob:
    worker_run.run_job(str(job.pk), worker="gpu@test")
    job.refresh_from_db()
    return job


def with_memory(memory: dict) -> None:
    model = ImageModel.objects.get(key="tiny-flux")
    model.options = {**model.options, "memory": memory}
    model.save()


def test_a_job_on_a_cpu_worker_runs_the_entrys_quantization_and_records_it() -> None:
    with_memory({"transformer": {"precision": "int8"}})
    job = run(GenerationJobFactory(images_total=1))
    assert job.status == JobStatus.COMPLETE, job.error
    assert job.memory_plan == {"card": "cpu", "components": {"transformer": {"precision": "int8"}}}


def test_a_job_without_a_plan_records_none() -> None:
    job = run(GenerationJobFactory(images_total=1))
    assert job.status == JobStatus.COMPLETE and job.memory_plan == {}


def test_a_quantization_the_worker_cannot_run_fails_the_job_with_the_reason() -> None:
    with_memory({"transformer": {"precision": "nf4"}})
    job = run(GenerationJobFactory(images_total=1))
    assert job.status == JobStatus.FAILED and "nf4 weights (bitsandbytes) need a CUDA worker" in job.error


def test_on_a_card_the_worker_plans_for_it_from_the_folder(monkeypatch, tiny_flux_dir) -> None:
    monkeypatch.setattr(worker_engines, "worker_card", lambda: Card("cuda", "NVIDIA T4", 16, (7, 5)))
    plan = worker_engines.memory_plan(ImageModel.objects.get(key="tiny-flux"), tiny_flux_dir)
    assert plan["fits"] and plan["components"]["transformer"] == {"precision": "fp16", "placement": "gpu"}
    assert plan["components"]["text_encoder_2"]["precision"] == "fp32" and "peak" in plan["summary"]


def test_a_job_runs_on_an_entry_whose_transformer_is_a_gguf_file(tiny_flux_dir) -> None:
    from generation.devtools.gguf import build_tiny_gguf

    build_tiny_gguf(tiny_flux_dir, tiny_flux_dir.parent / "worker-Q8_0.gguf")
    model = ImageModel.objects.get(key="tiny-flux")
    model.options = {**model.options, "gguf": "worker-Q8_0.gguf"}
    model.full_clean()
    model.save()
    job = run(GenerationJobFactory(images_total=1))
    assert job.status == JobStatus.COMPLETE, job.error
    engine = worker_engines._engines["tiny-flux"]
    assert type(engine.pipe.transformer.transformer_blocks[0].attn.to_q.weight).__name__ == "GGUFParameter"


def test_importing_the_engines_lock_imports_no_torch() -> None:
    """The training task imports engines_lock while the preload thread may be importing torch and
    diffusers in the same process; two threads importing them at once left modules on the meta
    device (a training run failed with "Cannot copy out of meta tensor")."""
    import subprocess
    import sys

    code = "import django, sys; django.setup(); import generation.worker.engines; print('torch' in sys.modules)"
    env = {**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "brandstudio.settings_test"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


class FakeEngine:
    memory_bytes = 0  # the card decides here, not the budget

    def __init__(self) -> None:
        self.unloaded = False

    def unload(self) -> None:
        self.unloaded = True


def test_on_a_card_models_stay_loaded_together_only_where_their_plans_fit(monkeypatch) -> None:
    """An A10G holds two 2 B models with room for either's job, not one beside FLUX.1-dev in int8."""
    gb = 10**9
    small = [Component("transformer", "ZImageTransformer2DModel", 2 * gb, int(1.9 * gb), width=2048)]
    flux_dev = [
        Component("text_encoder_2", "T5EncoderModel", int(4.762 * gb), int(4.630 * gb)),
        Component("transformer", "FluxTransformer2DModel", int(11.901 * gb), int(11.85 * gb), width=3072),
    ]
    card = CARDS["a10g"]
    plans = {"tiny-flux": plan_for(small, card), "zimage": plan_for(small, card), "flux-dev": plan_for(flux_dev, card)}
    engines = {key: FakeEngine() for key in [*plans, "fixed-mode"]}
    monkeypatch.setattr(worker_engines, "_estimator_bytes", lambda: 0)
    monkeypatch.setattr(worker_engines, "_engines", OrderedDict([("tiny-flux", engines["tiny-flux"])]))
    monkeypatch.setattr(worker_engines, "_card_plans", {"tiny-flux": plans["tiny-flux"]})

    def load(key: str) -> list[str]:
        worker_engines._make_room(0, card=card, plan=plans.get(key))
        worker_engines._engines[key] = engines[key]
        worker_engines._card_plans[key] = plans.get(key)
        return list(worker_engines._engines)

    assert load("zimage") == ["tiny-flux", "zimage"]  # both fit: none unloaded
    assert load("flux-dev") == ["flux-dev"] and engines["tiny-flux"].unloaded and engines["zimage"].unloaded
    assert load("tiny-flux") == ["tiny-flux"]
    assert load("fixed-mode") == ["fixed-mode"]  # an entry that fixes its memory_mode has no plan: alone


def test_a_draft_job_records_the_step_cache_it_ran_with_and_its_page_says_so(client) -> None:
    model = ImageModel.objects.get(key="tiny-flux")
    model.options = {"speed": {"cache": {"draft": {"method": "first_block", "value": 0.35}}}}
    model.save()
    job = run(GenerationJobFactory(images_total=1, quality="draft"))
    assert job.status == JobStatus.COMPLETE, job.error
    assert job.speed == {"compiled": False, "attention": "sdpa", "cache": "First Block Cache at 0.35", "hotswap": 0}
    client.force_login(job.owner)
    assert "First Block Cache at 0.35" in client.get(job.get_absolute_url()).content.decode()
