"""A model's memory plan where an admin registers or edits it, and the `memory` override checked
against the workers' cards on save."""

import json

import pytest
from django.urls import reverse

from generation.models import ImageModel
from tests.admin_forms import admin_change

pytestmark = pytest.mark.django_db


def tiny() -> ImageModel:
    return ImageModel.objects.get(key="tiny-flux")


def test_the_model_page_shows_its_plan_on_each_worker_card_and_on_one_asked_for(card_admin_client) -> None:
    url = reverse("admin:generation_imagemodel_change", args=[tiny().pk])
    page = card_admin_client.get(url).content.decode()
    assert "NVIDIA T4: " in page and "NVIDIA A10G: " in page
    assert "transformer fp16 on the GPU" in page and "transformer bf16 on the GPU" in page  # a T4 has no bf16
    assert "text_encoder_2 fp32 on the GPU" in page  # T5 never in fp16
    asked = card_admin_client.get(url, {"card": "20"}).content.decode()
    assert "20 GB card: " in asked
    refused = card_admin_client.get(url, {"card": "10000"}).content.decode()
    assert "Give between 4 and 1024 GB" in refused


def test_a_model_not_installed_here_says_how_to_see_its_plan(card_admin_client) -> None:
    model = ImageModel.objects.create(
        key="elsewhere",
        name="Elsewhere",
        family="flux",
        repo_id="brand/not-pulled",
        license_name="x",
        commercial_use=False,
    )
    page = card_admin_client.get(reverse("admin:generation_imagemodel_change", args=[model.pk])).content.decode()
    assert "Not installed on this machine" in page and "pull_model elsewhere" in page


@pytest.mark.parametrize(
    ("memory", "message"),
    [
        ({"transformer": {"precision": "fp8"}}, "fp8 needs compute capability 8.9"),
        ({"transformer": {"precision": "bf16"}}, "has no bf16"),
        ({"unet": {"precision": "int8"}}, "no component &#x27;unet&#x27;"),
        ({"transformer": {"precision": "int3"}}, "a precision of bf16"),
        ({"transformer": "int8"}, "as {&quot;precision&quot;"),
        ([], "is an object naming components"),
    ],
)
def test_a_memory_override_the_workers_cards_cannot_run_is_refused_at_save(card_admin_client, memory, message) -> None:
    response = admin_change(card_admin_client, tiny(), options=json.dumps({"memory": memory}))
    assert message in response.content.decode()
    assert "memory" not in tiny().options


def test_a_memory_override_that_does_not_fit_a_worker_card_is_refused(card_admin_client, monkeypatch) -> None:
    from generation import model_files
    from tests.memory.test_plan import FLUX_DEV

    monkeypatch.setattr(model_files, "installed_components", lambda model: FLUX_DEV)  # FLUX.1-dev's sizes
    memory = {"transformer": {"precision": "fp16", "placement": "gpu"}}
    response = admin_change(card_admin_client, tiny(), options=json.dumps({"memory": memory}))
    page = response.content.decode()
    assert "On the NVIDIA T4 it does not fit with this memory override" in page
    assert "transformer fp16 on the GPU" in page
    assert "memory" not in tiny().options


def test_a_memory_override_the_cards_run_is_saved_and_the_plan_follows_it(card_admin_client) -> None:
    memory = {"text_encoder_2": {"precision": "int8", "placement": "offload"}}
    admin_change(card_admin_client, tiny(), options=json.dumps({"memory": memory}))
    assert tiny().options["memory"] == memory
    page = card_admin_client.get(reverse("admin:generation_imagemodel_change", args=[tiny().pk])).content.decode()
    assert page.count("text_encoder_2 int8 offloaded after use") == 2  # on both cards


def test_a_folder_saved_in_fp8_is_refused_where_a_worker_card_cannot_run_it(card_admin_client, monkeypatch) -> None:
    from dataclasses import replace

    from generation import model_files
    from tests.memory.test_plan import FLUX_DEV

    saved = [
        replace(c, stored="fp8 (torchao)", stored_bytes=c.params) if c.name == "transformer" else c for c in FLUX_DEV
    ]
    monkeypatch.setattr(model_files, "installed_components", lambda model: saved)
    response = admin_change(card_admin_client, tiny(), name="Tiny FLUX in fp8")
    assert "On the NVIDIA T4: transformer is saved in fp8 (torchao): fp8 needs compute capability 8.9" in (
        response.content.decode()
    )
    assert tiny().name != "Tiny FLUX in fp8"
