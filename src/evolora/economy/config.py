"""The config of `evolora economy run`: workload, steered knobs and their bounds, agents, market,
pheromones, neurochemistry, anxiety and bursts. Every field is documented where it is declared."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Role(str, Enum):
    """What an agent steers; each role has its own action space (see agents.py)."""

    LR = "lr"
    WEIGHT_DECAY = "weight_decay"
    DROPOUT = "dropout"
    GRAD_CLIP = "grad_clip"
    ACCUMULATION = "accumulation"
    RANK = "rank"
    DATA_MIX = "data_mix"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkloadConfig(_Strict):
    """The LoRA fine-tuning job the economy steers."""

    task: str = Field(
        "default",
        description="a task grid name (default, easy, medium, hard, or one family) or a dataset "
        "(a .jsonl path or hf:NAME[:SPLIT])",
    )
    steps: int = Field(300, ge=1, description="micro-batches (forward + backward passes) in all")
    batch_size: int = Field(16, ge=1, description="examples per micro-batch")
    rank: int = Field(8, ge=1, description="LoRA rank the run starts with")
    max_rank: int = Field(16, ge=1, description="highest rank the rank agent may grow to")
    alpha: float = Field(16.0, gt=0, description="LoRA alpha (scale alpha / max_rank)")
    targets: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"]
    )
    val_examples: int = Field(64, ge=4, description="holdout examples for validation loss")
    probe_examples: int = Field(32, ge=4, description="train examples for the credit probe")
    test_per_cell: int = Field(4, ge=1, description="holdout examples per cell for task accuracy")
    max_new_tokens: int = Field(48, ge=1, description="generation length for task accuracy")
    eval_every: int = Field(20, ge=1, description="micro-batches between validation evaluations")
    checkpoint_every: int = Field(20, ge=1, description="micro-batches between checkpoints")

    @model_validator(mode="after")
    def _rank_fits(self) -> WorkloadConfig:
        if self.rank > self.max_rank:
            raise ValueError(f"rank ({self.rank}) must not exceed max_rank ({self.max_rank}).")
        return self


class Bounds(_Strict):
    """Allowed range of one knob: a proposal outside it is clipped (and logged as clipped)."""

    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if not self.low <= self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high}).")
        return self


class KnobsConfig(_Strict):
    """Starting values of the steered hyperparameters and the range each may take."""

    lr: float = Field(1e-3, gt=0)
    lr_gain: float = Field(
        0.05, ge=0, description="hypergradient gain: per step lr x exp(gain x signal / its rms)"
    )
    lr_evidence: float = Field(
        2.0,
        ge=0,
        description="t statistic of the recent hypergradient signals, in a step's direction, "
        "that lets the step move the lr",
    )
    weight_decay: float = Field(0.0, ge=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    grad_clip: float = Field(1.0, gt=0)
    accumulation: int = Field(1, ge=1)
    lr_bounds: Bounds = Field(default_factory=lambda: Bounds(low=1e-5, high=3e-2))
    lr_gain_bounds: Bounds = Field(default_factory=lambda: Bounds(low=0.0, high=1.0))
    weight_decay_bounds: Bounds = Field(default_factory=lambda: Bounds(low=0.0, high=0.3))
    dropout_bounds: Bounds = Field(default_factory=lambda: Bounds(low=0.0, high=0.5))
    grad_clip_bounds: Bounds = Field(default_factory=lambda: Bounds(low=0.05, high=10.0))
    accumulation_bounds: Bounds = Field(default_factory=lambda: Bounds(low=1, high=4))
    mix_bounds: Bounds = Field(
        default_factory=lambda: Bounds(low=0.05, high=1.0),
        description="range of each data-mix group's share (renormalised after clipping)",
    )


class AgentsConfig(_Strict):
    """Which roles act, and how agents decide."""

    roles: list[Role] = Field(default_factory=lambda: list(Role))
    decide_every: int = Field(10, ge=2, description="optimizer steps between decision rounds")
    step_factor: float = Field(
        1.5, gt=1, description="base multiplicative move of a knob (scaled by limonene)"
    )
    risk_initial: float = Field(0.6, gt=0, le=1, description="starting probability to act")
    risk_bounds: Bounds = Field(default_factory=lambda: Bounds(low=0.15, high=0.95))
    risk_rate: float = Field(0.1, ge=0, le=1, description="how fast risk follows success")
    history: int = Field(8, ge=2, description="credits each agent remembers")
    grad_weight: float = Field(
        1.0, ge=0, description="how strongly the gradient-norm trend biases lr / clip choices"
    )
    prune_recovery: float = Field(
        1.0,
        ge=0,
        description="the rank agent may prune only while the micro-batches still ahead are at "
        "least this multiple of those already trained, so a re-factored adapter has time to "
        "recover (0: always)",
    )


class SearchConfig(_Strict):
    """The lr agent's opening bold-driver search (search.py); only with the lr agent."""

    enabled: bool = True
    every: int = Field(2, ge=1, description="optimizer steps between search rounds")
    factor: float = Field(2.0, gt=1, description="lr multiplier after a round the probe fell")
    patience: int = Field(2, ge=1, description="rounds in a row the probe may not fall")
    tie: float = Field(
        0.002,
        ge=0,
        description="a missed round whose validation log-loss is within this of the kept "
        "round's ties it and keeps its training (0: every missed round is undone)",
    )
    retreat: float = Field(
        1.0,
        ge=1,
        description="divisor of the last rate that made the validation loss fall, giving the lr "
        "the search lands on when it gives up (1: that rate)",
    )


class MarketConfig(_Strict):
    """Tokens, prices, scarcity, inflation, volatility, trading and bankruptcy."""

    initial_tokens: float = Field(5.0, gt=0)
    base_price: float = Field(1.0, gt=0, description="tokens an action costs at price level 1")
    budget: int = Field(3, ge=1, description="actions the market allows per decision round")
    scarcity: float = Field(0.5, ge=0, description="price rise per unit of excess demand")
    inflation: float = Field(0.002, ge=0, description="price-level growth per round")
    volatility: float = Field(0.05, ge=0, description="std of the log price shock per round")
    credit_history: int = Field(6, ge=2, description="probe measurements in the credit trend")
    trend_damping: float = Field(0.5, ge=0, le=1, description="share of the trend expected")
    reward_scale: float = Field(400.0, ge=0, description="tokens per unit of log-loss credit")
    penalty_fraction: float = Field(0.5, ge=0, le=1, description="share of a negative credit paid")
    trading: bool = Field(True, description="needy agents borrow from rich ones")
    need_multiple: float = Field(2.0, gt=0, description="an agent is needy below this x price")
    lend_fraction: float = Field(0.3, gt=0, le=1, description="share of a surplus lent at once")
    interest: float = Field(0.1, ge=0, description="interest a borrower repays on a loan")
    repay_share: float = Field(0.5, gt=0, le=1, description="share of earnings that repays debt")
    rebirth_tokens: float = Field(3.0, gt=0, description="tokens a bankrupt agent restarts with")


class PheromoneConfig(_Strict):
    """Pheromone field over each agent's actions (ACO-style: p ~ tau^alpha * eta^beta)."""

    enabled: bool = True
    evaporation: float = Field(0.1, ge=0, lt=1, description="base share evaporated per round")
    deposit: float = Field(
        1.0, ge=0, description="pheromone per unit of positive credit over the recent credits' rms"
    )
    spread_window: int = Field(12, ge=2, description="recent round credits in that spread")
    initial: float = Field(1.0, gt=0)
    floor: float = Field(0.05, gt=0, description="lowest pheromone (keeps every action possible)")
    alpha: float = Field(1.0, ge=0, description="weight of pheromone in the choice")
    beta: float = Field(1.0, ge=0, description="weight of the gradient heuristic in the choice")


class NeuroConfig(_Strict):
    """The four modulators (levels in [0, 1], EMAs of their signals; see neurochem.py)."""

    enabled: bool = True
    rate: float = Field(0.3, gt=0, le=1, description="EMA rate of every modulator")
    exploration_min: float = Field(0.05, ge=0, le=1)
    exploration_max: float = Field(0.4, ge=0, le=1)


class AnxietyConfig(_Strict):
    """Anxiety from validation loss and the panic it triggers."""

    enabled: bool = True
    rise: float = Field(0.25, ge=0, description="added per stagnant validation")
    regression_rise: float = Field(0.5, ge=0, description="added per validation worse than last")
    fall: float = Field(0.3, ge=0, description="removed per improving validation")
    threshold: float = Field(0.5, gt=0, description="panic above this (raised by linalool)")
    tolerance: float = Field(0.002, ge=0, description="relative gain that counts as improvement")
    severe: float = Field(
        0.05,
        ge=0,
        description="a validation loss worse than the best by more than this share panics at "
        "once, whatever the anxiety level (0: never)",
    )
    lr_backoff: float = Field(0.5, gt=0, lt=1, description="panic multiplies lr by this")
    rollback_margin: float = Field(0.02, ge=0, description="panic rolls back if val > best x (1+m)")
    explore_boost: float = Field(0.3, ge=0, le=1, description="extra exploration after a panic")
    explore_rounds: int = Field(3, ge=0, description="rounds the exploration boost lasts")


class BurstConfig(_Strict):
    """Quantum bursts: singular-value perturbations of each adapter's update at stagnation."""

    enabled: bool = True
    patience: int = Field(
        2, ge=1, description="validations or probe rounds without a new best before a burst"
    )
    top_k: int = Field(2, ge=1, description="singular directions perturbed per adapter")
    scale: float = Field(0.3, gt=0, description="std of the relative singular-value change")
    window: int = Field(
        10,
        ge=1,
        description="micro-batches before the burst is judged against the same weights with the "
        "burst undone and the pre-burst snapshot",
    )


class EconomyConfig(_Strict):
    """Everything `evolora economy run` needs; the same config and seed give the same run."""

    seed: int = 0
    host: str = "builtin"
    device: str | None = Field(None, description="torch device; null follows the host")
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    knobs: KnobsConfig = Field(default_factory=KnobsConfig)
    agents: AgentsConfig = Field(default_factory=AgentsConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    market: MarketConfig = Field(default_factory=MarketConfig)
    pheromones: PheromoneConfig = Field(default_factory=PheromoneConfig)
    neuro: NeuroConfig = Field(default_factory=NeuroConfig)
    anxiety: AnxietyConfig = Field(default_factory=AnxietyConfig)
    bursts: BurstConfig = Field(default_factory=BurstConfig)
