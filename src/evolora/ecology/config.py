"""The ecology's configuration: one pydantic model per mechanism, names as in the seed document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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


class SplitsConfig(_Section):
    """Which prompts the colony decides with (roles.py): learning uses the train split; a share
    of the holdout split is kept for the colony's decisions, the rest for the final evaluation."""

    selection_fraction: float = Field(
        0.4,
        gt=0,
        lt=1,
        description="share of the holdout split's prompts reserved for foraging, routing and the "
        "assimilation probe (never evaluated on); the rest is the final evaluation's",
    )


class SpecialisationConfig(_Section):
    """What each organelle specialises on: it forages and learns only in its niche."""

    niche: Literal["family", "cell", "none"] = Field(
        "family",
        description="family: one task family (all its difficulties); cell: one (family, "
        "difficulty) cell; none: every organelle is a generalist",
    )
    offspring: Literal["adaptive", "parent"] = Field(
        "adaptive",
        description="an offspring's niche. adaptive: while a niche has no organelle the "
        "offspring colonises it (starting from the gene pool's best gene for that niche, else "
        "from the merged adapter); otherwise an offspring of a family specialist narrows to the "
        "family's cell the market prices highest that no organelle holds yet (starting from its "
        "parent's adapter). parent: offspring keep their parent's niche and adapter",
    )


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
    """Evolution strategies with antithetic low-rank perturbations (gradient-free)."""

    pairs: int = Field(8, ge=1, description="antithetic pairs per organelle per step")
    sigma: float = Field(0.01, gt=0)
    lr: float = Field(1e-4, gt=0)
    noise_rank: int = Field(1, ge=1)
    optimizer: Literal["sgd", "adam"] = Field(
        "sgd", description="sgd: step along the fitness-weighted noise; adam: Adam on that estimate"
    )
    keep_if_better: bool = Field(
        True,
        description="keep an update only if it raises the fitness of examples it was not "
        "estimated on",
    )


class HebbianConfig(_Section):
    """Reward-modulated Hebbian updates by node perturbation (gradient-free)."""

    lr: float = Field(0.01, gt=0, description="step along the reward-weighted traces")
    noise: float = Field(
        0.01,
        gt=0,
        description="exploration noise on each adapted layer's output (0.1 is already non-linear "
        "on the built-in host: the reward then stops tracking the gradient)",
    )


class BackpropConfig(_Section):
    """The reference rule: Adam with gradients back-propagated through the frozen host."""

    lr: float = Field(2e-3, gt=0, description="Adam learning rate (the peak, under a schedule)")
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="cosine: linear warm-up over `warmup` of the run's generations, then cosine "
        "decay of the rate to zero at the last generation",
    )
    warmup: float = Field(0.05, ge=0, lt=1, description="share of the run spent warming up")
    family_lr: dict[str, float] = Field(
        default_factory=dict,
        description="peak rate of the organelles whose niche lies in a family (the family or one "
        "of its cells), where it differs from lr, e.g. {logic: 0.003}; a family outside the grid "
        "has no organelles, so its entry does nothing",
    )

    @field_validator("family_lr")
    @classmethod
    def _positive_rates(cls, rates: dict[str, float]) -> dict[str, float]:
        for family, rate in rates.items():
            if rate <= 0:
                raise ValueError(f"learning.backprop.family_lr.{family} must be > 0 (got {rate})")
        return rates


class ComposeConfig(_Section):
    """ES over per-block mixing coefficients of gene-pool genes (gradient-free)."""

    mix: int = Field(
        4,
        ge=1,
        description="genes one organelle mixes (lora.rank must be >= "
        "mix x genes.rank, so the mix is exact)",
    )
    pairs: int = Field(8, ge=1, description="antithetic pairs of coefficient vectors per step")
    sigma: float = Field(0.05, gt=0, description="perturbation of each coefficient")
    lr: float = Field(0.05, gt=0, description="Adam learning rate on the coefficients")
    birth_steps: int | None = Field(
        None,
        ge=1,
        description="tune an organelle's mix only for this many steps after its birth (then the "
        "other rules take over); null: for its whole life",
    )


RuleName = Literal["backprop", "es", "hebbian", "compose"]


class LearningConfig(_Section):
    """Which rules update the organelles, in order, and on how much data. `backprop` sends
    gradients through the frozen host (the reference); `es` and `hebbian` are gradient-free."""

    rules: list[RuleName] = Field(["backprop"], min_length=1)
    batch: int = Field(16, ge=1, description="training examples per organelle per step")
    steps: int = Field(1, ge=1, description="learning steps per organelle per generation")
    es: ESConfig = ESConfig()
    hebbian: HebbianConfig = HebbianConfig()
    backprop: BackpropConfig = BackpropConfig()
    compose: ComposeConfig = ComposeConfig()

    @model_validator(mode="after")
    def _distinct(self) -> LearningConfig:
        if len(set(self.rules)) != len(self.rules):
            raise ValueError(f"learning.rules names a rule twice: {self.rules}")
        return self


class GenesConfig(_Section):
    """The gene pool: adapters the colony recombines (organelle snapshots, merges, imports)."""

    rank: int = Field(4, ge=1, description="rank every gene is stored at (truncated SVD above)")
    capacity: int = Field(12, ge=1, description="genes kept; the weakest non-imported one goes")
    pool: str | None = Field(
        None,
        description="a gene pool folder to start from (written by `evolora genes import` or "
        "by an earlier run in RUN/genes)",
    )


class ReproductionConfig(_Section):
    """Rich organelles spawn mutated offspring."""

    energy_threshold: float = Field(8.0, gt=0, description="energy needed to reproduce")
    mutation_sigma: float = Field(0.01, ge=0)


class AssimilationTuning(_Section):
    """When and how a winning organelle is merged into the colony."""

    @field_validator("merge_method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        from evolora.lora import MERGE_METHODS

        if value not in MERGE_METHODS:
            raise ValueError(
                f"unknown merge method {value!r}; choose one of {', '.join(sorted(MERGE_METHODS))}"
            )
        return value

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
    holdout_margin: float = Field(
        0.0, description="probe gain whose lower confidence bound the merge must exceed"
    )
    probe_z: float = Field(
        1.645, ge=0, description="standard errors below the probe's mean paired gain that must "
        "still clear the margin (1.645: one-sided 95 %)"
    )
    energy_topup_roi_bonus: float = Field(
        0.0, ge=0, description="energy minted for high-ROI organelles"
    )
    topup_roi_threshold: float = Field(1.5, ge=0, description="ROI needed for an energy top-up")
    gating_snapshot_limit: int = Field(20, ge=1, description="gating snapshots kept in the run")
    offspring: int = Field(2, ge=0, description="organelles seeded from the merged adapter")
    merge_method: str = Field(
        "svd_soup",
        description="how a winner merges into the colony's "
        "adapter (a method of evolora.lora.merge)",
    )
    weight_floor: float = Field(
        1e-3,
        gt=0,
        description="smallest weight a side of a merge gets "
        "before the weights are normalised to sum to one",
    )
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
    route_prompts: int = Field(
        32, ge=2, description="reserved foraging prompts per cell on which the routing check "
        "compares organelles with the merged adapter (never trained on, never the holdout)"
    )
    route_candidates: int = Field(
        3, ge=1, description="organelles per cell the routing check compares (largest edges)"
    )
    route_pooled: bool = Field(
        True,
        description="also route a cell to an organelle whose edge pooled over its niche's cells "
        "clears zero by route_z, when its edge on the cell itself is not negative",
    )
    route_z: float = Field(
        2.0,
        ge=0,
        description="standard errors by which an organelle's paired edge on a cell must clear "
        "zero before the routed colony sends it that cell",
    )


class ExecutionConfig(_Section):
    """Where the learning phase runs: in this process, or sharded over Ray actors that each hold
    a replica of the host and learn for a share of the organelles."""

    engine: Literal["local", "ray"] = "local"
    workers: int = Field(2, ge=1, description="Ray actors (one CPU each; a host replica each)")
    address: str | None = Field(
        None, description="a Ray cluster to join (e.g. 'auto'); empty: start a local one"
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
    splits: SplitsConfig = SplitsConfig()
    specialisation: SpecialisationConfig = SpecialisationConfig()
    energy: EnergyConfig = EnergyConfig()
    environment: EnvironmentConfig = EnvironmentConfig()
    learning: LearningConfig = LearningConfig()
    genes: GenesConfig = GenesConfig()
    reproduction: ReproductionConfig = ReproductionConfig()
    assimilation_tuning: AssimilationTuning = AssimilationTuning()
    diversity: DiversityConfig = DiversityConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    execution: ExecutionConfig = ExecutionConfig()

    @model_validator(mode="after")
    def _compose_fits(self) -> EcologyConfig:
        if "compose" in self.learning.rules:
            need = self.learning.compose.mix * self.genes.rank
            if self.lora.rank < need:
                raise ValueError(
                    f"learning.compose.mix is {self.learning.compose.mix} genes of rank "
                    f"{self.genes.rank}, so lora.rank must be at least {need} (got "
                    f"{self.lora.rank}) for the mix to be exact"
                )
        return self
