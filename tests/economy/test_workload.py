"""The workload's data: splits never overlap, groups follow the task, datasets load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evolora.economy.workload import TaskSource
from evolora.errors import EvoloraError
from evolora.tasks import split_of


def test_train_examples_come_from_train_and_evaluation_from_holdout():
    source = TaskSource("default", seed=3)
    assert sorted(source.groups) == ["json_repair", "logic", "math", "sequence", "sorting"]
    assert all(split_of(ex) == "train" for ex in source.train_batch(0, 40, [0.2] * 5))
    assert all(split_of(ex) == "holdout" for ex in source.fixed(1, 20, "holdout"))
    assert all(split_of(ex) == "holdout" for ex in source.test_examples(1))
    assert source.train_batch(5, 8, [0.2] * 5) == source.train_batch(5, 8, [0.2] * 5)


def test_one_family_mixes_over_difficulties():
    source = TaskSource("math", seed=0)
    assert source.groups == ["d1", "d2", "d3", "d4", "d5"]
    batch = source.train_batch(0, 50, [0.0, 0.0, 0.0, 0.0, 1.0])
    assert {ex.difficulty for ex in batch} == {5}


def test_a_jsonl_dataset_is_split_by_hash_and_grouped_by_family(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [
        {"prompt": f"add {i} {j} =", "answer": str(i + j), "family": f"f{i % 2}"}
        for i in range(30)
        for j in range(4)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    source = TaskSource(str(path), seed=0)
    assert source.groups == ["f0", "f1"]
    batch = source.sample(np.random.default_rng(0), 30, "train", [1.0, 0.0])
    assert {ex.family for ex in batch} == {"f0"}
    assert all(split_of(ex) == "train" for ex in batch)
    assert all(split_of(ex) == "holdout" for ex in source.test_examples(1))
    tiny = tmp_path / "tiny.jsonl"
    tiny.write_text(json.dumps(rows[0]) + "\n")
    with pytest.raises(EvoloraError, match="both the train and the holdout split"):
        TaskSource(str(tiny), seed=0)
