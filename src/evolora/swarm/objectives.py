"""Objectives the swarm ships, each with its search space and direction, picked by a spec string:

- `bbob:FID:DIM[:INSTANCE]`: COCO's bbob function FID (1-24) in DIM dimensions, value = regret
  f(x) - f_opt (minimise), through the `coco-experiment` package (module `cocoex`);
- `sklearn:MODEL:DATASET`: 3-fold cross-validated accuracy of a scikit-learn model (svc, rf,
  logreg, knn) on a bundled dataset (iris, wine, breast_cancer, digits) (maximise);
- `lora-sft[:GRID]`: LoRA fine-tuning of the built-in host (see `lora_objective.py`);
- `module:function`: any importable function `f(params) -> float` (its space comes from the config).

Objectives are picklable values (the spec), so they run in worker processes and on Ray.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from evolora.errors import EvoloraError


@dataclass(frozen=True)
class Objective:
    """A named objective: `spec`, its default space (or None), direction, and whether it takes a
    budget (multi-fidelity)."""

    spec: str
    space: dict[str, Any] | None
    direction: str
    budgeted: bool = False

    def __call__(self, params: dict[str, Any], budget: float | None = None) -> float:
        kind = self.spec.split(":", 1)[0]
        if kind == "bbob":
            return _bbob_value(self.spec, params)
        if kind == "sklearn":
            return _sklearn_value(self.spec, params)
        if kind == "lora-sft":
            from evolora.swarm.lora_objective import lora_sft_value

            return lora_sft_value(self.spec, params, budget)
        fn = _user_function(self.spec)
        return fn(params) if budget is None else fn(params, budget)

    def baseline(self) -> float | None:
        """The value with nothing tuned (lora-sft: the untuned host's score), or None when the
        objective has no such reference."""
        if self.spec.split(":", 1)[0] != "lora-sft":
            return None
        from evolora.swarm.lora_objective import lora_sft_baseline

        return lora_sft_baseline(self.spec)


def load_objective(spec: str) -> Objective:
    """The objective named by `spec`; EvoloraError naming the spec when it is not valid."""
    kind = spec.split(":", 1)[0]
    if kind == "bbob":
        _fid, dim, _ = _bbob_parts(spec)
        space = {f"x{i}": {"kind": "float", "low": -5.0, "high": 5.0} for i in range(dim)}
        _bbob_problem(spec)  # fail now, not in a worker
        return Objective(spec, space, "minimize")
    if kind == "sklearn":
        model, _dataset = _sklearn_parts(spec)
        return Objective(spec, SKLEARN_SPACES[model], "maximize")
    if kind == "lora-sft":
        from evolora.swarm.lora_objective import LORA_SPACE, parse_spec

        parse_spec(spec)
        return Objective(spec, LORA_SPACE, "maximize", budgeted=True)
    _user_function(spec)
    return Objective(spec, None, "minimize")


# -- bbob ----------------------------------------------------------------------------------------


def _bbob_parts(spec: str) -> tuple[int, int, int]:
    parts = spec.split(":")
    try:
        fid, dim = int(parts[1]), int(parts[2])
        instance = int(parts[3]) if len(parts) > 3 else 1
    except (IndexError, ValueError):
        raise EvoloraError(
            f"Objective '{spec}' is not a bbob spec; write bbob:FID:DIM[:INSTANCE], e.g. bbob:1:2."
        ) from None
    if not 1 <= fid <= 24 or dim not in (2, 3, 5, 10, 20, 40) or not 1 <= instance <= 15:
        raise EvoloraError(
            f"Objective '{spec}': bbob needs FID in 1-24, DIM in 2, 3, 5, 10, 20, 40 and "
            "INSTANCE in 1-15."
        )
    return fid, dim, instance


@lru_cache(maxsize=64)
def _bbob_problem(spec: str) -> Any:
    fid, dim, instance = _bbob_parts(spec)
    try:
        import cocoex
    except ImportError:
        raise EvoloraError(
            "bbob objectives need the coco-experiment package: pip install 'evolora[swarm]'."
        ) from None
    suite = cocoex.Suite(
        "bbob", "", f"function_indices:{fid} dimensions:{dim} instance_indices:{instance}"
    )
    problem = next(iter(suite))
    return problem, suite  # keep the suite alive with its problem


@lru_cache(maxsize=64)
def bbob_optimum(spec: str) -> float:
    """f_opt of a bbob problem: its value at x_opt, which cocoex writes to
    `._bbob_problem_best_parameter.txt` in the working directory (here a temporary one)."""
    import os
    import tempfile

    problem, _ = _bbob_problem(spec)
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            problem._best_parameter("print")
            x_opt = np.loadtxt("._bbob_problem_best_parameter.txt", ndmin=1)
        finally:
            os.chdir(here)
    return float(problem(x_opt))


def _bbob_value(spec: str, params: dict[str, Any]) -> float:
    problem, _ = _bbob_problem(spec)
    x = np.array([params[f"x{i}"] for i in range(problem.dimension)], dtype=float)
    return float(problem(x)) - bbob_optimum(spec)


# -- sklearn -------------------------------------------------------------------------------------

SKLEARN_SPACES: dict[str, dict[str, Any]] = {
    "svc": {
        "C": {"kind": "float", "low": 1e-3, "high": 1e3, "log": True},
        "gamma": {"kind": "float", "low": 1e-5, "high": 1e1, "log": True},
        "kernel": {"kind": "categorical", "choices": ["rbf", "linear"]},
    },
    "rf": {
        "n_estimators": {"kind": "int", "low": 10, "high": 200, "log": True},
        "max_depth": {"kind": "int", "low": 1, "high": 20},
        "max_features": {"kind": "float", "low": 0.1, "high": 1.0},
        "criterion": {"kind": "categorical", "choices": ["gini", "entropy"]},
    },
    "logreg": {
        "C": {"kind": "float", "low": 1e-4, "high": 1e3, "log": True},
        "penalty": {"kind": "categorical", "choices": ["l2", "l1"]},
    },
    "knn": {
        "n_neighbors": {"kind": "int", "low": 1, "high": 50, "log": True},
        "weights": {"kind": "categorical", "choices": ["uniform", "distance"]},
        "p": {"kind": "int", "low": 1, "high": 2},
    },
}
DATASETS = ("iris", "wine", "breast_cancer", "digits")


def _sklearn_parts(spec: str) -> tuple[str, str]:
    parts = spec.split(":")
    if len(parts) != 3 or parts[1] not in SKLEARN_SPACES or parts[2] not in DATASETS:
        raise EvoloraError(
            f"Objective '{spec}' is not valid; write sklearn:MODEL:DATASET with MODEL in "
            f"{', '.join(SKLEARN_SPACES)} and DATASET in {', '.join(DATASETS)}."
        )
    return parts[1], parts[2]


def _sklearn_value(spec: str, params: dict[str, Any]) -> float:
    from sklearn import datasets, ensemble, linear_model, neighbors, svm
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model_name, dataset = _sklearn_parts(spec)
    x, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    if model_name == "svc":
        model = svm.SVC(**params)
    elif model_name == "rf":
        model = ensemble.RandomForestClassifier(random_state=0, n_jobs=1, **params)
    elif model_name == "logreg":
        model = linear_model.LogisticRegression(solver="liblinear", max_iter=500, **params)
    else:
        model = neighbors.KNeighborsClassifier(**params)
    pipeline = make_pipeline(StandardScaler(), model)
    return float(np.mean(cross_val_score(pipeline, x, y, cv=3)))


# -- user functions ------------------------------------------------------------------------------


def _user_function(spec: str) -> Any:
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise EvoloraError(
            f"Objective '{spec}' is not valid; use bbob:FID:DIM, sklearn:MODEL:DATASET, lora-sft "
            "or module:function."
        )
    try:
        fn = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        raise EvoloraError(
            f"Objective '{spec}': cannot import function '{name}' from module '{module_name}'."
        ) from None
    if not callable(fn):
        raise EvoloraError(f"Objective '{spec}': '{name}' is not callable.")
    return fn
