"""The extension sections of a Reso config: one pydantic model per extension (`enabled` + knobs).

Knob names follow the Reso-LLM v2 vocabulary (`agency.max_foci`, `prsc.coherence_threshold`,
`temporal_smf.memory_decay_rate`, `stability.lyapunov_threshold`, ...). Every section forbids
unknown keys, so a typo stops with one sentence naming the field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


class PrimeEmbeddingConfig(_Section):
    """Token t -> the t-th prime p_t; adds prime phase features with learned amplitudes."""

    amplitude_init: float = Field(0.1, ge=0, description="initial amplitude of the phase code")


class PRSCConfig(_Section):
    """Prime Resonance Semantic Coherence: complex prime states, interference, bindings."""

    num_primes: int = Field(16, ge=2, le=256, description="prime basis states per token")
    coherence_threshold: float = Field(0.7, ge=0, le=1, description="coherence a state must reach")
    max_bindings: int = Field(1000, ge=1, description="capacity of the concept-binding table")
    sharpness: float = Field(10.0, gt=0, description="slope of the coherence gate")


class KuramotoConfig(_Section):
    """Per-token phase oscillators synchronised by K causal Kuramoto steps."""

    steps: int = Field(3, ge=1, le=16)
    coupling: float = Field(1.0, ge=0, description="initial coupling strength kappa (learned)")
    dt: float = Field(0.5, gt=0, le=2)


class ResonantAttentionConfig(_Section):
    """Adds beta_h * cos(theta_i - theta_j) to the attention scores, beta_h = beta * phi^-h."""

    phase_scale: float = Field(1.0, ge=0, description="beta: the phase bias of head 0")


class AgencyConfig(_Section):
    """Goals that bias attention keys and logits; attention foci; goal progress."""

    max_foci: int = Field(5, ge=1)
    max_goals: int = Field(10, ge=1, description="explicit goals held at once")
    novelty_weight: float = Field(0.4, ge=0, le=1, description="share of novelty in salience")
    intrinsic_goals: int = Field(4, ge=1, description="learned goal vectors")
    achieve_threshold: float = Field(0.5, ge=0, le=1, description="progress that counts as done")
    explicit_priority: float = Field(3.0, ge=0, description="logit bonus of an explicit goal")


class CoherenceGatingConfig(_Section):
    """ACT halting over depth (Graves 2016): a token that has halted skips the remaining FFNs."""

    halt_threshold: float = Field(0.99, gt=0, le=1, description="1 - epsilon of ACT")
    ponder_cost: float = Field(0.01, ge=0, description="weight of the ponder loss N + R")
    halt_bias_init: float = Field(-1.0, description="initial bias of the halting unit")


class StochasticResonanceConfig(_Section):
    """FFN pre-activation noise, switched on per token where a repeated bigram is detected."""

    noise_amplitude: float = Field(0.1, ge=0)
    window: int = Field(32, ge=1, description="how far back a repeated bigram is looked for")


class TemporalSMFConfig(_Section):
    """Sedenion memory field: keys (x) values bound by the sedenion product, decayed, episodic."""

    channels: int = Field(4, ge=1, description="sedenions per token")
    memory_decay_rate: float = Field(0.01, ge=0, lt=1)
    max_moments: int = Field(1000, ge=1, description="moments kept by update_memory")
    episodic_tagging: bool = True
    episode_carry: float = Field(0.5, ge=0, le=1, description="weight of other-episode moments")


class StabilityConfig(_Section):
    """Lyapunov monitor over the hidden-state trajectory; adjusts the sampling temperature."""

    lyapunov_threshold: float = Field(0.1, description="exponent above which generation is chaotic")
    auto_temperature_adjust: bool = True
    predictive_horizon: int = Field(5, ge=1, description="steps the exponent trend is extrapolated")
    window: int = Field(16, ge=4, description="moving window of hidden states")
    min_temperature: float = Field(0.1, gt=0)
    max_temperature: float = Field(1.5, gt=0)
    entropy_floor: float = Field(0.05, ge=0, description="nats; below over a window = collapse")
    recurrence_distance: float = Field(0.05, gt=0, le=2,
                                       description="unit-sphere distance of a recurring state")
    recurrence_share: float = Field(0.5, gt=0, le=1,
                                    description="share of recurring states that means a loop")
    divergent_lyapunov: float = Field(1.0, gt=0, description="exponent that means divergence")


class EntanglementConfig(_Section):
    """Several models sharing memory fields and next-token beliefs."""

    enabled: bool = False
    agent_id: str = "agent"
    strength: float = Field(0.5, ge=0, le=1, description="weight of the partners' shared state")
    share_memory: bool = True
    strategy: Literal["consensus", "parallel", "sequential"] = "consensus"


class ResoSections(BaseModel):
    """All extension sections of a Reso model."""

    model_config = ConfigDict(extra="forbid")

    prime_embedding: PrimeEmbeddingConfig = Field(default_factory=PrimeEmbeddingConfig)
    prsc: PRSCConfig = Field(default_factory=PRSCConfig)
    kuramoto: KuramotoConfig = Field(default_factory=KuramotoConfig)
    resonant_attention: ResonantAttentionConfig = Field(default_factory=ResonantAttentionConfig)
    agency: AgencyConfig = Field(default_factory=AgencyConfig)
    coherence_gating: CoherenceGatingConfig = Field(default_factory=CoherenceGatingConfig)
    stochastic_resonance: StochasticResonanceConfig = Field(
        default_factory=StochasticResonanceConfig
    )
    temporal_smf: TemporalSMFConfig = Field(default_factory=TemporalSMFConfig)
    stability: StabilityConfig = Field(default_factory=StabilityConfig)
    entanglement: EntanglementConfig = Field(default_factory=EntanglementConfig)


EXTENSIONS = tuple(ResoSections.model_fields)
# Extensions that change the forward pass (the rest act at generation time).
FORWARD_EXTENSIONS = (
    "prime_embedding", "prsc", "kuramoto", "resonant_attention", "agency", "coherence_gating",
    "stochastic_resonance", "temporal_smf",
)
