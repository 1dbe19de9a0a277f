"""The swarm's configuration: one pydantic model per level (agents, managers, supervisor)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evolora.swarm.strategies import STRATEGIES


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ManagerConfig(_Section):
    """A team manager's rules: plateau detection, reassignment, region splitting and shrinking."""

    every: int = Field(6, ge=1, description="the manager acts after this many of its team's tells")
    patience: int | None = Field(
        None,
        ge=1,
        description="an agent this many evaluations without improving is stuck "
        "(None: 20 + 10 x dimension)",
    )
    lag_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="an agent whose best is below this fraction of the team's "
        "(in rank of the team's losses) adopts the meta-memory's suggestion, with jitter",
    )
    jitter: float = Field(0.05, ge=0, description="std of the jitter around a suggestion")
    shrink: float = Field(0.8, gt=0, lt=1, description="region side factor when the team improves")
    min_width: float = Field(0.05, gt=0, le=1, description="a team region's smallest side")


class SupervisorConfig(_Section):
    """The supervisor's rules: heatmap, overlap, cloning / retirement and diversity re-seeding."""

    every: int = Field(24, ge=1, description="the supervisor acts after this many tells")
    heatmap: bool = Field(
        True, description="steer random proposals and reallocations to unvisited cells"
    )
    heat_bins: int = Field(4, ge=2, description="heatmap cells per coordinate")
    overlap: bool = Field(True, description="detect overlapping teams and move the worse one away")
    overlap_threshold: float = Field(0.7, gt=0, le=1, description="per-side overlap that counts")
    best_distance: float = Field(
        0.05, ge=0, description="teams whose bests are closer (per sqrt(dim)) overlap too"
    )
    cloning: bool = Field(True, description="clone the best team, retire the worst")
    max_teams: int = Field(6, ge=1)
    min_teams: int = Field(2, ge=1)
    retire_after: int = Field(
        60,
        ge=1,
        description="a team this many of its evaluations without improving, and worst, is retired",
    )
    diversity_reseed: bool = Field(
        True,
        description="re-seed a team into unexplored space when diversity falls below the threshold",
    )
    diversity_threshold: float = Field(0.08, ge=0, le=1)
    window: int = Field(48, ge=4, description="recent evaluations the diversity is measured on")


class FidelityConfig(_Section):
    """Successive halving (ASHA-style): trials start at min_budget; the top 1/eta of a rung are
    re-evaluated at eta times the budget, up to max_budget. Low budgets cull poor regions; they
    cannot rank good neighbours, so the best max-budget configuration is refined at max_budget.
    Promotions test the low budgets: when they rank configurations no better than chance, new
    trials start at max_budget."""

    enabled: bool = False
    min_budget: float = Field(1.0, gt=0)
    max_budget: float = Field(9.0, gt=0)
    eta: int = Field(3, ge=2)
    promote_after: int | None = Field(
        None,
        ge=2,
        description="a rung promotes (its top 1/eta) only once it holds this many results, so "
        "the first promotion is not the best of the first eta low-budget results; None: eta "
        "(ASHA)",
    )
    refine_share: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="once a configuration leads at max_budget, this share of new trials goes to "
        "a refinement team taking local steps around it at max_budget (0 = off)",
    )
    refine_after: int = Field(
        1,
        ge=1,
        description="refinement starts only once this many configurations have a max_budget "
        "result, around the best of them, so it does not lock in on the first one promoted "
        "(1: around the first leader)",
    )
    refine_width: float = Field(0.5, gt=0, le=1, description="side of the refinement region")
    refine_patience: float | None = Field(
        None,
        gt=0,
        le=1,
        description="the refinement team's share of new trials halves after each run of this "
        "share of the study's horizon (at least 3) of its trials without improving on its "
        "leader, and is restored when it improves or moves to a new leader, so a stalled "
        "refinement gives its trials back to exploration (e.g. 0.15); None (or no horizon): it "
        "stays",
    )
    min_agreement: float | None = Field(
        0.0,
        ge=-1,
        le=1,
        description="once `agreement_pairs` promoted configurations have results at two rungs, "
        "new trials start at max_budget when Kendall's tau between the rungs is not above this "
        "(the low budgets do not predict the high ones); None: always start at min_budget",
    )
    agreement_pairs: int = Field(4, ge=2, description="pairs the agreement is judged on")
    refine_above: float | None = Field(
        None,
        description="refinement starts only around a configuration whose full-budget value "
        "beats this one (in the objective's units, e.g. the untuned model's score; runs of "
        "an objective that ships a baseline default to it); None: around any leader",
    )

    @model_validator(mode="after")
    def _order(self) -> FidelityConfig:
        if self.max_budget < self.min_budget:
            raise ValueError("fidelity.max_budget must be at least fidelity.min_budget")
        return self


class SwarmConfig(_Section):
    """Everything the swarm search decides with."""

    seed: int = 0
    direction: Literal["minimize", "maximize"] = "minimize"
    directions: list[Literal["minimize", "maximize"]] | None = Field(
        None,
        description="two or more objectives (e.g. value, cost): tell a sequence of values; "
        "Swarm.pareto_front() holds the non-dominated trials",
    )
    teams: int = Field(3, ge=1, description="teams at the start")
    agents_per_team: int = Field(3, ge=1)
    strategies: list[str] = Field(
        ["cmaes", "trust", "random"], description="strategies given round-robin to a team's agents"
    )
    focus: float = Field(
        3.0,
        ge=0,
        description="trials go to teams and agents with weight "
        "1 / (rank + 1)^focus by their best (0 = evenly)",
    )
    messages: bool = Field(True, description="managers exchange bests and claimed regions")
    horizon: int | None = Field(
        None,
        ge=1,
        description="trials the study will run (None: `Swarm.optimize` and `evolora swarm run` "
        "set it from their trial count)",
    )
    tempo: bool = Field(
        True,
        description="a study shorter than four supervisor cycles runs its managers and "
        "supervisor at a pace scaled to its horizon, so that they act within it",
    )
    manager: ManagerConfig = ManagerConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    fidelity: FidelityConfig = FidelityConfig()

    @field_validator("directions")
    @classmethod
    def _several(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(value) < 2:
            raise ValueError("directions needs two or more objectives (or leave it out)")
        return value

    @field_validator("strategies")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if name not in STRATEGIES]
        if bad or not value:
            raise ValueError(f"strategies must be a non-empty list of {', '.join(STRATEGIES)}")
        return value


class RunConfig(_Section):
    """`evolora swarm run`: objective, budget, execution and the swarm."""

    objective: str = "bbob:1:2"
    trials: int = Field(100, ge=1)
    space: dict[str, Any] | None = Field(
        None, description="search space (objectives that ship one may omit it)"
    )
    executor: Literal["local", "process", "ray"] = "local"
    workers: int = Field(1, ge=1, description="trials evaluated at once")
    checkpoint_every: int = Field(25, ge=1, description="trials between checkpoints")
    swarm: SwarmConfig = SwarmConfig()
