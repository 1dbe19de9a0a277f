"""`SwarmSampler`: the swarm as an Optuna sampler, so Optuna's storages, pruners and dashboard
work unchanged:

    study = optuna.create_study(sampler=SwarmSampler(seed=0))
    study.optimize(objective, n_trials=100)

The relative search space is Optuna's intersection of the parameters every finished trial used;
parameters outside it (e.g. conditional ones) come from an independent sampler (random by default).
When the intersection changes (in the first trials of a define-by-run objective) the swarm starts
over on the new space. Pruned and failed trials are told to the swarm as failed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from evolora.errors import EvoloraError

try:
    import optuna
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from optuna.samplers import BaseSampler, RandomSampler
    from optuna.search_space import IntersectionSearchSpace
    from optuna.trial import FrozenTrial, TrialState
except ImportError as problem:  # pragma: no cover - optuna is an optional dependency
    raise EvoloraError(
        "SwarmSampler needs optuna: pip install 'evolora[swarm]' (or pip install optuna)."
    ) from problem

from evolora.swarm.config import SwarmConfig
from evolora.swarm.space import CategoricalParam, FloatParam, IntParam, Space
from evolora.swarm.study import Swarm, Trial


def _to_param(name: str, dist: BaseDistribution) -> FloatParam | IntParam | CategoricalParam:
    """Our parameter for an Optuna distribution (stepped ones search the step index,
    categoricals the choice index)."""
    if isinstance(dist, FloatDistribution) and dist.step is not None:
        return IntParam(name=name, low=0, high=round((dist.high - dist.low) / dist.step))
    if isinstance(dist, FloatDistribution):
        return FloatParam(name=name, low=dist.low, high=dist.high, log=dist.log)
    if isinstance(dist, IntDistribution):
        if dist.step != 1:
            return IntParam(name=name, low=0, high=(dist.high - dist.low) // dist.step)
        return IntParam(name=name, low=dist.low, high=dist.high, log=dist.log)
    if isinstance(dist, CategoricalDistribution):
        return CategoricalParam(name=name, choices=list(range(len(dist.choices))))
    raise EvoloraError(f"SwarmSampler cannot search parameter '{name}' of type {dist!r}.")


def _to_optuna(value: Any, dist: BaseDistribution) -> Any:
    """The Optuna value for our decoded value."""
    if isinstance(dist, FloatDistribution):
        if dist.step is not None:
            return min(dist.high, dist.low + value * dist.step)
        return float(value)
    if isinstance(dist, IntDistribution):
        return int(dist.low + value * dist.step) if dist.step != 1 else int(value)
    return dist.choices[value]


class SwarmSampler(BaseSampler):
    """An Optuna sampler driven by a `Swarm` (agents, managers, supervisor)."""

    def __init__(
        self,
        seed: int | None = None,
        config: SwarmConfig | None = None,
        independent_sampler: BaseSampler | None = None,
    ) -> None:
        self._config = (config or SwarmConfig()).model_copy(
            update={} if seed is None else {"seed": seed}
        )
        self._independent = independent_sampler or RandomSampler(seed=seed)
        self._swarm: Swarm | None = None
        self._key: tuple | None = None
        self._asked: dict[int, Trial] = {}
        self._lock = threading.Lock()

    @property
    def swarm(self) -> Swarm | None:
        """The swarm behind the sampler (None until the search space is known)."""
        return self._swarm

    def reseed_rng(self) -> None:
        """Optuna calls this for parallel workers: keep the swarm's seed, reseed the fallback."""
        self._independent.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """Parameters every finished trial used (single-valued ones left out)."""
        self._raise_error_if_multi_objective(study)
        space = IntersectionSearchSpace(include_pruned=True).calculate(study)
        return {name: dist for name, dist in space.items() if not dist.single()}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """The swarm's next configuration over the relative search space."""
        if not search_space:
            return {}
        with self._lock:
            key = tuple(sorted((name, repr(dist)) for name, dist in search_space.items()))
            if key != self._key:
                direction = "maximize" if study.direction.name == "MAXIMIZE" else "minimize"
                config = self._config.model_copy(update={"direction": direction})
                space = Space([_to_param(name, dist) for name, dist in search_space.items()])
                self._swarm, self._key, self._asked = Swarm(space, config), key, {}
            asked = self._swarm.ask()
            self._asked[trial.number] = asked
        return {name: _to_optuna(asked.params[name], dist) for name, dist in search_space.items()}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """Parameters outside the relative space come from the independent sampler."""
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Tell the swarm how the trial it proposed ended."""
        with self._lock:
            asked = self._asked.pop(trial.number, None)
            if asked is None or self._swarm is None or asked.number >= len(self._swarm.trials):
                return
            if state == TrialState.COMPLETE and values:
                self._swarm.tell(asked, float(values[0]))
            else:
                self._swarm.tell(asked, None, error=f"optuna trial {state.name.lower()}")
