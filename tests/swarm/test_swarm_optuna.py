"""SwarmSampler inside real Optuna studies: storages, pruners, directions, conditional spaces."""

from __future__ import annotations

import pytest

optuna = pytest.importorskip("optuna")

from evolora.swarm import SwarmSampler  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial):
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_int("y", 0, 10)
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    if kind == "a":
        trial.suggest_float("extra", 0, 1)  # conditional: outside the intersection space
    return (x - 1) ** 2 + (y - 3) ** 2 + (kind == "a") + abs(__import__("math").log10(lr) + 3)


def test_sampler_drives_an_optuna_study():
    study = optuna.create_study(sampler=SwarmSampler(seed=0))
    study.optimize(objective, n_trials=150)
    assert study.best_value < 0.6  # random search needs thousands of trials for this
    assert study.best_params["kind"] == "b" and study.best_params["y"] == 3
    swarm = study.sampler.swarm
    assert swarm is not None and set(swarm.space.names) == {"x", "y", "lr", "kind"}
    told = [t for t in swarm.trials if t.state == "complete"]
    assert len(told) >= 140  # every trial after the first few told the swarm


def test_sampler_works_with_an_rdb_storage(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(sampler=SwarmSampler(seed=0), storage=storage, study_name="s")
    study.optimize(objective, n_trials=12)
    reloaded = optuna.load_study(study_name="s", storage=storage)
    assert len(reloaded.trials) == 12 and reloaded.best_value == study.best_value
    assert len(study.sampler.swarm.trials) >= 10


def test_same_seed_same_study():
    first = optuna.create_study(sampler=SwarmSampler(seed=5))
    second = optuna.create_study(sampler=SwarmSampler(seed=5))
    first.optimize(objective, n_trials=30)
    second.optimize(objective, n_trials=30)
    assert [t.params for t in first.trials] == [t.params for t in second.trials]


def test_maximise_with_a_pruner_and_failures():
    def climbing(trial):
        x = trial.suggest_float("x", 0, 1)
        if x > 0.95:
            raise ValueError("unstable")
        for step in range(3):
            trial.report(x * step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x

    study = optuna.create_study(
        direction="maximize",
        sampler=SwarmSampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )
    study.optimize(climbing, n_trials=60, catch=(ValueError,))
    states = {t.state.name for t in study.trials}
    assert {"COMPLETE", "PRUNED", "FAIL"} <= states
    assert 0.85 < study.best_value <= 0.95
    assert study.sampler.swarm.config.direction == "maximize"


def test_stepped_and_categorical_distributions_stay_valid():
    def stepped(trial):
        a = trial.suggest_int("a", 0, 20, step=5)
        b = trial.suggest_float("b", 0.0, 1.0, step=0.25)
        c = trial.suggest_categorical("c", [None, 1, "two"])
        assert a in (0, 5, 10, 15, 20) and b in (0.0, 0.25, 0.5, 0.75, 1.0)
        return a + b + (c is None)

    study = optuna.create_study(sampler=SwarmSampler(seed=0))
    study.optimize(stepped, n_trials=80)
    assert study.best_value == 0.0
