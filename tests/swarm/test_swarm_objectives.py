"""The shipped objectives: bbob regret, scikit-learn cross-validation, LoRA fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest

from evolora.errors import EvoloraError
from evolora.swarm import Swarm, SwarmConfig
from evolora.swarm.objectives import load_objective


def test_bbob_regret_is_non_negative_and_the_swarm_lowers_it():
    pytest.importorskip("cocoex")
    objective = load_objective("bbob:1:2:1")
    assert objective.direction == "minimize" and set(objective.space) == {"x0", "x1"}
    rng = np.random.default_rng(0)
    values = [objective({"x0": a, "x1": b}) for a, b in rng.uniform(-5, 5, (20, 2))]
    assert min(values) > 0
    best = Swarm(objective.space, SwarmConfig(seed=0)).optimize(objective, 200)
    assert best.value < min(values) / 100


def test_sklearn_objective_scores_cross_validated_accuracy():
    pytest.importorskip("sklearn")
    objective = load_objective("sklearn:knn:iris")
    assert objective.direction == "maximize"
    value = objective({"n_neighbors": 5, "weights": "uniform", "p": 2})
    assert 0.85 < value <= 1.0


@pytest.mark.parametrize("spec", ["lora-sft:nosuchgrid", "lora-sft:easy:f1", "bbob:1:7"])
def test_bad_specs_are_one_sentence(spec):
    with pytest.raises(EvoloraError) as problem:
        load_objective(spec)
    assert "\n" not in str(problem.value)


@pytest.fixture
def small_holdout(monkeypatch):
    """Score on 64 holdout examples: greedy answers on the full sample cost seconds each."""
    from evolora.swarm import lora_objective

    monkeypatch.setattr(lora_objective, "HOLDOUT", 64)


def test_lora_sft_trains_a_real_adapter_and_scores_the_holdout(small_holdout):
    objective = load_objective("lora-sft:easy:loss")
    assert objective.budgeted and objective.direction == "maximize"
    params = {
        "lr": 1e-2,
        "rank": 2,
        "alpha": 4.0,
        "dropout": 0.0,
        "batch_size": 2,
        "steps": 5,
        "targets": "attn",
        "optimizer": "adamw",
    }
    short, full = objective(params, 0.2), objective(params)
    assert np.isfinite(short) and np.isfinite(full) and short < 0 and full < 0
    assert short != full  # one step against five: the budget changes what is trained
    from evolora.swarm.lora_objective import lora_sft_value

    assert lora_sft_value(objective.spec, params) == full  # deterministic
    assert lora_sft_value(objective.spec, {**params, "warmup": 0.4}) != full  # 2 slower steps
    assert lora_sft_value(objective.spec, {**params, "schedule": "cosine"}) != full
    assert lora_sft_value(objective.spec, params, seed=1) != full  # another training seed


def test_a_promotion_continues_the_lower_budget_training_and_matches_a_fresh_run(
    small_holdout,
):
    import torch

    from evolora.swarm import lora_objective

    params = {
        "lr": 1e-2,
        "rank": 2,
        "alpha": 4.0,
        "dropout": 0.2,
        "batch_size": 2,
        "steps": 6,
        "warmup": 0.5,  # the promotion resumes inside the warm-up
        "schedule": "cosine",  # and the decay is set by the configured steps, not the budget
        "targets": "attn",
        "optimizer": "adamw",
    }
    spec = "lora-sft:easy:loss"
    before = torch.get_rng_state()
    fresh = lora_objective.lora_sft_value(spec, params, 1.0, resume=False)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's random state is kept
    lora_objective.lora_sft_value(spec, params, 1 / 3)
    key = f"{spec}|0|{sorted(params.items())!r}"
    assert lora_objective._resume[key]["steps"] == 2  # kept for the promotion
    assert lora_objective.lora_sft_value(spec, params, 1.0) == pytest.approx(fresh, abs=1e-6)
    other = {**params, "steps": 9}
    lora_objective._resume[f"{spec}|0|{sorted(other.items())!r}"] = {
        **lora_objective._resume[key],
        "steps": 3,
        "adapter": {n: v * 0 for n, v in lora_objective._resume[key]["adapter"].items()},
    }  # a planted state is really trained on: the zeroed adapter gives another score
    assert lora_objective.lora_sft_value(spec, other, 1.0) != pytest.approx(
        lora_objective.lora_sft_value(spec, other, 1.0, resume=False), abs=1e-6
    )


def test_partial_budget_accuracy_breaks_ties_by_the_loss_and_full_budget_is_plain_accuracy(
    small_holdout,
):
    import math

    from evolora.swarm import lora_objective

    params = {
        "lr": 3e-3,
        "rank": 2,
        "alpha": 4.0,
        "dropout": 0.0,
        "batch_size": 2,
        "steps": 3,
        "targets": "attn",
        "optimizer": "adamw",
    }
    value = lora_objective.lora_sft_value
    accuracy, loss = "lora-sft:easy:accuracy", "lora-sft:easy:loss"
    plain = value(accuracy, params, 1 / 3, tiebreak=False)
    examples = lora_objective.HOLDOUT  # every budget is scored on the whole holdout sample
    # k / n (evaluate rounds accuracies to 4 decimals)
    assert round(plain * examples) == pytest.approx(plain * examples, abs=examples * 1e-4)
    nll = -value(loss, params, 1 / 3)
    # The tie-break is the loss, under half a right answer: accuracies never swap order.
    assert value(accuracy, params, 1 / 3) == pytest.approx(
        plain + math.exp(-nll) / (2 * examples), abs=1e-6
    )
    assert value(accuracy, params) == value(accuracy, params, tiebreak=False)


def test_the_untuned_host_is_the_lora_baseline_and_runs_refine_only_above_it(small_holdout):
    from evolora.swarm.config import RunConfig
    from evolora.swarm.lora_objective import lora_sft_baseline
    from evolora.swarm.runner import build

    spec = "lora-sft:easy:accuracy"
    floor = lora_sft_baseline(spec)
    assert 0 < floor < 1 and load_objective(spec).baseline() == floor
    assert load_objective("bbob:1:2").baseline() is None
    fidelity = {"enabled": True, "min_budget": 1 / 3, "max_budget": 1.0}
    swarm, _ = build(RunConfig(objective=spec, swarm={"fidelity": fidelity}))
    assert swarm.config.fidelity.refine_above == floor
    given = {**fidelity, "refine_above": 0.9}
    swarm, _ = build(RunConfig(objective=spec, swarm={"fidelity": given}))
    assert swarm.config.fidelity.refine_above == 0.9
