"""The braid presets load, and a bad value or unknown key stops with a sentence naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from evolora.braid.config import PoolMakeConfig, TrainConfig
from evolora.errors import EvoloraError
from evolora.telemetry.config_io import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "braid"


def test_presets_load():
    assert load_config(CONFIGS / "train.yaml", TrainConfig) == TrainConfig()
    assert load_config(CONFIGS / "pool.yaml", PoolMakeConfig) == PoolMakeConfig()


def test_bad_values_name_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("braider: {temperatures: [0.0]}\n")
    with pytest.raises(EvoloraError, match="temperatures"):
        load_config(path, TrainConfig)
    path.write_text("reward: {lamda: 1}\n")
    with pytest.raises(EvoloraError, match="lamda"):
        load_config(path, TrainConfig)


def test_samples_per_prompt_must_divide_the_batch(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("batch: 30\nsamples_per_prompt: 4\n")
    with pytest.raises(EvoloraError, match="samples_per_prompt"):
        load_config(path, TrainConfig)


def test_pair_families_must_be_the_runs(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("families: [math, logic]\nfusion: {pair_families: [logic, sequence]}\n")
    with pytest.raises(EvoloraError, match="pair_families"):
        load_config(path, TrainConfig)
