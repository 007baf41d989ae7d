"""What the training tests share: a set for the seeded Icon asset type, and where LoRAs go."""

from pathlib import Path

import pytest

from generation.models import AssetPreset, TrainingSet


@pytest.fixture
def lora_root(settings, tmp_path) -> Path:
    settings.STUDIO_LORA_ROOT = tmp_path / "loras"
    return settings.STUDIO_LORA_ROOT


@pytest.fixture
def training_set(alice) -> TrainingSet:
    preset = AssetPreset.objects.get(slug="icon")  # the seeded one: the brief's counts apply
    return TrainingSet.objects.create(name="Icons 2026", preset=preset, family="flux", trigger_word="bsicon")
