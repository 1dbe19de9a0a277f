"""The ecology's configuration: one pydantic model per mechanism, names as in the seed document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PopulationConfig(_Section):
    """How many organelles live at once."""

    initial: int = Field(8, ge=1, description="organelles at generation 0")
    min: int = Field(4, ge=1, description="below this, new organelles are seeded from the colony")
    max: int = Field(12, ge=1, description="reproduction stops at this size")

    @model_validator(mode="after")
    def _bounds(self) -> PopulationConfig:
        if not self.min <= self.initial <= self.max:
            raise ValueError(
                f"population bounds must satisfy min <= initial <= max "
                f"(got min={self.min}, initial={self.initial}, max={self.max})"
            )
        return self


class LoRAConfig(_Section):
    """Shape of every organelle's adapter."""

    rank: int = Field(4, ge=1)
    alpha: float = Field(8.0, gt=0)
    targets: list[str] | None = Field(None, description="linear layers to adapt; None = defaults")
    basis: Literal["random", "host"] = Field(
        "random",
        description="random: every entry of A and B is learned (PEFT's LoRA); host: each adapter "
        "is an r x r core in its layer's top singular directions (LoRA-XS), r^2 numbers per layer",
    )


class GridConfig(_Section):
    """The task grid the colony forages on."""

    families: list[str] = ["math", "logic", "sorting", "sequence", "json_repair"]
    difficulties: list[int] = [1, 2, 3]
    cells_per_generation: int = Field(4, ge=1, description="cells the UCB bandit serves each gen")
    episodes_per_organelle: int = Field(4, ge=1, description="tasks an organelle solves per gen")
    max_new_tokens: int = Field(24, ge=1)


class EnergyConfig(_Section):
    """The energy economy: ticket, costs and caps."""

    m: float = Field(0.5, ge=0, description="ticket charged to every organelle each generation")
    cost_scale: float = Field(1.0, ge=0, description="multiplies every episode's compute cost")
    initial: float = Field(4.0, ge=0)
    cap: float = Field(20.0, gt=0)
    grace_generations: int = Field(2, ge=0, description="generations below the ticket before death")
    flop_weight: float = Field(1.0, ge=0, description="cost per GFLOP actually spent")
    latency_weight: float = Field(0.0, ge=0, description="cost per second of wall time")
    param_weight: float = Field(0.0, ge=0, description="cost per million adapter parameters")

    @model_validator(mode="after")
    def _cap_above_initial(self) -> EnergyConfig:
        if self.initial > self.cap:
            raise ValueError(
                f"energy.initial ({self.initial}) must not exceed energy.cap ({self.cap})"
            )
        return self


class EnvironmentConfig(_Section):
    """Rewards and the market price of each task cell."""

    success_reward_bonus: float = Field(0.5, ge=0, description="extra revenue on a full success")
    failure_cost_multiplier: float = Field(1.5, ge=0, description="cost multiplier on a failure")
    price_initial: float = Field(1.0, gt=0)
    price_step: float = Field(0.1, ge=0, description="relative price move per unit of failure rate")
    price_min: float = Field(0.2, gt=0)
    price_max: float = Field(5.0, gt=0)
    ucb_c: float = Field(1.0, ge=0, description="exploration weight of the cell bandit")

    @model_validator(mode="after")
    def _price_bounds(self) -> EnvironmentConfig:
        if not self.price_min <= self.price_initial <= self.price_max:
            raise ValueError(
                "environment prices must satisfy price_min <= price_initial <= price_max"
            )
        return self


class ESConfig(_Section):
    """Evolution strategies with antithetic low-rank perturbations."""

    pairs: int = Field(8, ge=1, description="antithetic pairs per organelle per generation")
    sigma: float = Field(0.01, gt=0)
    lr: float = Field(1e-4, gt=0)
    noise_rank: int = Field(1, ge=1)
    batch: int = Field(16, ge=1, description="training examples each perturbation is scored on")
    keep_if_better: bool = Field(
        True,
        description="keep an update only if it raises the fitness of examples it was not "
        "estimated on",
    )


class HebbianConfig(_Section):
    """Reward-modulated Hebbian updates (node perturbation on the adapter's output)."""

    lr: float = Field(0.01, gt=0, description="step along the reward-weighted traces")
    noise: float = Field(
        0.01,
        gt=0,
        description="exploration noise on each adapted layer's output (0.1 is already non-linear "
        "on the built-in host: the reward then stops tracking the gradient)",
    )


class BackpropConfig(_Section):
    """The reference learner: sign descent with gradients through the host (not gradient-free)."""

    lr: float = Field(1e-3, gt=0, description="step of every factor entry per update")


class LearningConfig(_Section):
    """Which rule updates the organelles: the gradient-free `es`, `hebbian` or `both`, or the
    `backprop` reference, which sends gradients through the frozen host."""

    mode: Literal["es", "hebbian", "both", "backprop"] = "es"
    es: ESConfig = ESConfig()
    hebbian: HebbianConfig = HebbianConfig()
    backprop: BackpropConfig = BackpropConfig()


class ReproductionConfig(_Section):
    """Rich organelles spawn mutated offspring."""

    energy_threshold: float = Field(8.0, gt=0, description="energy needed to reproduce")
    mutation_sigma: float = Field(0.01, ge=0)


class AssimilationTuning(_Section):
    """When and how a winning organelle is merged into the colony."""

    enabled: bool = True
    window: int = Field(8, ge=2, description="recent episodes compared (control vs treatment)")
    min_wins: int = Field(3, ge=1, description="generations an organelle must top its cells first")
    energy_gate: float = Field(6.0, ge=0, description="energy an organelle needs to be tested")
    uplift_threshold: float = Field(
        0.05, description="minimum mean uplift of treatment over control"
    )
    p_value: float = Field(
        0.1, gt=0, le=1, description="significance of the paired permutation test"
    )
    holdout_probe_size: int = Field(24, ge=1, description="reserved prompts in the holdout probe")
    holdout_margin: float = Field(0.0, description="probe accuracy gain the merge must exceed")
    energy_topup_roi_bonus: float = Field(
        0.0, ge=0, description="energy minted for high-ROI organelles"
    )
    topup_roi_threshold: float = Field(1.5, ge=0, description="ROI needed for an energy top-up")
    gating_snapshot_limit: int = Field(20, ge=1, description="gating snapshots kept in the run")
    offspring: int = Field(2, ge=0, description="organelles seeded from the merged adapter")
    permutations: int = Field(2000, ge=100)


class DiversityConfig(_Section):
    """Guards against one lineage taking over."""

    enabled: bool = True
    energy_gini_cap: float = Field(0.5, gt=0, le=1)
    redistribute_fraction: float = Field(0.25, ge=0, le=1, description="share of excess moved")
    species_share_cap: float = Field(0.5, gt=0, le=1)


class EvaluationConfig(_Section):
    """Holdout evaluation of host, best organelle, merged adapter and routed colony."""

    every: int = Field(10, ge=1, description="generations between evaluations (and at the end)")
    per_cell: int = Field(16, ge=1, description="holdout examples per cell")
    route_z: float = Field(
        2.0,
        ge=0,
        description="standard errors by which an organelle's paired edge on a cell must clear "
        "zero before the routed colony sends it that cell",
    )


class EcologyConfig(_Section):
    """Everything one ecology run needs."""

    seed: int = 0
    host: str = "builtin"
    device: str | None = None
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "fp32", description="host precision; auto: bf16 autocast where a start-up probe shows it "
        "faster (evolora.hosts.precision)")
    generations: int = Field(40, ge=1)
    population: PopulationConfig = PopulationConfig()
    lora: LoRAConfig = LoRAConfig()
    grid: GridConfig = GridConfig()
    energy: EnergyConfig = EnergyConfig()
    environment: EnvironmentConfig = EnvironmentConfig()
    learning: LearningConfig = LearningConfig()
    reproduction: ReproductionConfig = ReproductionConfig()
    assimilation_tuning: AssimilationTuning = AssimilationTuning()
    diversity: DiversityConfig = DiversityConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
