"""The braid's configuration: the pool to make, fusion training, the MetaBraider, its training."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FAMILIES = ["math", "logic", "sorting", "sequence", "json_repair"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoolMakeConfig(_Section):
    """`evolora braid pool make`: one LoRA specialist of the host per task family."""

    seed: int = 0
    host: str = Field("builtin", description="host spec every specialist adapts")
    families: list[str] = Field(default_factory=lambda: list(FAMILIES))
    difficulties: list[int] = [1, 2, 3]
    rank: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    steps: int = Field(1000, ge=1, description="Adam steps (each: one batch of every family); "
                       "with the default extra steps a make takes about 20 minutes of one idle "
                       "core")
    extra_steps: dict[str, int] = Field(
        default_factory=lambda: {"sequence": 1000, "json_repair": 1000}, description="further "
        "Adam steps after `steps` for the named families' specialists alone (on evaluation "
        "prompts json_repair and sequence gain most from 1,000 to 2,000 steps, math and logic "
        "nothing: benchmarks/braid_specialist_steps.py)")
    batch_per_family: int = Field(32, ge=1)
    lr: float = Field(2e-3, gt=0)
    skill_examples: int = Field(48, ge=1, description="holdout examples per family for skill")
    max_new_tokens: int = Field(48, ge=1)
    checkpoint_every: int = Field(25, ge=1, description="steps between checkpoints")

    @model_validator(mode="after")
    def _extra_families(self) -> PoolMakeConfig:
        if "extra_steps" not in self.model_fields_set:  # the default names only pool families
            self.extra_steps = {f: n for f, n in self.extra_steps.items() if f in self.families}
        unknown = sorted(set(self.extra_steps) - set(self.families))
        if unknown or any(n < 0 for n in self.extra_steps.values()):
            raise ValueError(f"extra_steps must map families of the pool ({self.families}) to "
                             f"step counts >= 0; got {self.extra_steps}")
        return self


class SkillConfig(_Section):
    """How a pool's members have their skill measured (`measure_skill`): recorded in pool.json
    so that a member added later is measured the same way."""

    seed: int = 0
    families: list[str] = Field(default_factory=lambda: list(FAMILIES))
    difficulties: list[int] = [1, 2, 3]
    skill_examples: int = Field(48, ge=1, description="distinct prompts per family (holdout "
                                "draws, with repeats, when selection_fraction is None)")
    max_new_tokens: int = Field(48, ge=1)
    selection_fraction: float | None = Field(
        None, gt=0, lt=1, description="draw the prompts from this selection share of the "
        "holdout split (the share a braid run with at least this `selection_fraction` rewards "
        "its braider on and never evaluates); None: from the whole holdout split, as `pool "
        "make` measures")


class FusionTrainConfig(_Section):
    """Training of every strategy's fusion bank with the models frozen."""

    steps: int = Field(30, ge=0)
    batch: int = Field(16, ge=1)
    lr: float = Field(1e-2, gt=0)
    prompts: Literal["learn", "select"] = Field(
        "select", description="prompts the banks learn on: select (the braider's selection "
        "share of the holdout split) or learn (the train split, whose answers the models recall)")
    pair_share: float = Field(0.75, ge=0, le=1, description="share of rows where exactly one "
                              "other member joins the lead")
    lead_best: float = Field(0.75, ge=0, le=1, description="chance a row's lead is the member "
                             "measured best on its family (else a uniform draw)")
    model_keep: float = Field(0.6, gt=0, le=1, description="chance each other model joins the "
                              "lead in rows that are not pairs")
    layer_keep: float = Field(0.5, gt=0, le=1, description="chance each layer fuses in a row")
    pair_families: list[str] = Field(
        default_factory=list, description="families (of the run's) whose specialist gets a "
        "pair bank per strategy with each of its `pair_joiners` best joiners (none by default: "
        "on the default pool pair banks were measured not to make a join pay)")
    pair_joiners: int = Field(2, ge=0, description="joiners per pair family: the members that "
                              "answer most of the selection prompts its specialist misses")
    pair_probe: int = Field(96, ge=1, description="selection prompts per pair family on which "
                            "the joiners' room is measured")
    pair_steps: int = Field(150, ge=0, description="Adam steps of each pair bank")
    pair_lr: float = Field(3e-3, gt=0, description="learning rate of the pair banks")


class BraiderConfig(_Section):
    """The MetaBraider network and its choice sets."""

    width: int = Field(64, ge=8)
    depth: int = Field(2, ge=1, description="transformer layers of the decision network")
    heads: int = Field(4, ge=1)
    max_families: int = Field(16, ge=2, description="rows of the learned family embedding")
    skill_prior: float = Field(
        5.0, description="starting weight of a member's measured skill on the task's family in "
        "its lead logit (learned from there; 0: no prior)")
    join_prior: float = Field(
        0.0, description="starting weight of the profiles' evidence that a member helps the "
        "lead in its joining logit: 1 - |its skill on the task's family - the lead's| for a "
        "member whose domain is the family, 0 for the others (learned from there; 0: no prior). "
        "At 3 the braider tries a family's seed pair in a third of its training episodes on the "
        "seed-pair pool and its strategy head learns the logit average, but the joins do not pay "
        "(docs/braid-measurements.md), so it is off by default")
    join_by_task: bool = Field(False, description="the task token gives each member its own "
                               "joining score (as it gives each member a lead score), so a "
                               "join can pay on one family and not on another")
    temperatures: list[float] = [0.5, 1.0, 2.0]
    top_ks: list[int] = [1, 2, 3]

    @field_validator("temperatures")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if not value or any(t <= 0 for t in value):
            raise ValueError("temperatures must be a non-empty list of numbers > 0")
        return value


class FeedbackConfig(_Section):
    """Online learning from feedback (`Learner.learn_from_feedback`): each batch of feedback is
    kept in a window of recent episodes, and every batch takes several policy-gradient steps over
    that window, each episode weighted by how much likelier the braider now makes its decision
    than when it was taken (truncated importance weights)."""

    updates: int = Field(4, ge=1, description="policy-gradient steps per feedback batch, each "
                         "over the whole window of recent feedback")
    window: int = Field(32, ge=1, description="most recent feedback episodes kept and replayed")
    clip: float = Field(1.0, gt=0, description="cap of an episode's importance weight (the ratio "
                        "of its decision's probability now to when it was taken, per head)")
    baseline: Literal["window", "value"] = Field(
        "window", description="what an episode's reward is judged against: the mean reward of "
        "the window's other episodes of its family (window), or the learned value (value)")
    explore: float = Field(0.5, ge=0, lt=1, description="share of a family's first feedback "
                           "decisions (sampled through `Learner.exploration`) that lead with one "
                           "of the members it has tried least, decaying as its feedback grows")
    explore_decay: int = Field(24, ge=1, description="feedback episodes of a family after which "
                               "its exploration share has halved")


class RewardConfig(_Section):
    """reward = score - lam * compute - over * (compute - budget)+ - over * (latency - limit)+."""

    lam: float = Field(0.1, ge=0, description="price of the full pool's compute, in score points")
    over: float = Field(1.0, ge=0, description="penalty per unit of budget or latency overrun")
    budgets: list[float] = [0.35, 0.5, 1.0]
    latencies: list[float] = [1.0, 2.0]
    sync_cost: float = Field(0.05, ge=0, description="latency of one fusion layer's sync")


class TrainConfig(_Section):
    """`evolora braid train`: fusion banks, then the MetaBraider by REINFORCE."""

    seed: int = 0
    pool: str = Field("runs/braid-pool", description="pool folder (`evolora braid pool make`)")
    families: list[str] | None = Field(None, description="braider training families; None = all")
    difficulties: list[int] = [1, 2, 3]
    fusion: FusionTrainConfig = FusionTrainConfig()
    braider: BraiderConfig = BraiderConfig()
    reward: RewardConfig = RewardConfig()
    episodes: int = Field(2560, ge=1, description="braider training episodes (prompts)")
    batch: int = Field(32, ge=1, description="episodes per REINFORCE update")
    samples_per_prompt: int = Field(
        4, ge=1, description="decisions sampled per prompt; > 1: each is judged against the "
        "mean reward of the prompt's other samples (must divide batch)")
    selection_fraction: float = Field(
        0.4, gt=0, lt=1, description="share of the holdout split whose prompts the braider is "
        "rewarded on (the host recalls its train split); the rest is for evaluation")
    lr: float = Field(1e-2, gt=0)
    entropy: float = Field(0.01, ge=0, description="entropy bonus weight")
    lead_entropy: float = Field(
        0.05, ge=0, description="extra entropy bonus on the lead model at the start, annealed "
        "linearly to 0 at `lead_entropy_until` of training")
    lead_entropy_until: float = Field(0.5, gt=0, le=1, description="share of training over "
                                      "which the lead's extra entropy bonus decays to 0")
    value: float = Field(0.5, ge=0, description="weight of the learned baseline's loss")
    feedback: FeedbackConfig = FeedbackConfig()
    curriculum: bool = Field(True, description="easy difficulties first, harder ones later")
    max_new_tokens: int = Field(40, ge=1)
    checkpoint_every: int = Field(8, ge=1, description="updates between checkpoints")

    @model_validator(mode="after")
    def _groups_fill_batch(self) -> TrainConfig:
        if self.batch % self.samples_per_prompt:
            raise ValueError(f"samples_per_prompt ({self.samples_per_prompt}) must divide batch "
                             f"({self.batch})")
        families = self.families or FAMILIES
        unknown = [f for f in self.fusion.pair_families if f not in families]
        if unknown:
            raise ValueError(f"fusion.pair_families {unknown} are not among the run's families "
                             f"({families})")
        return self
