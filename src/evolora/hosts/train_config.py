"""The config of `evolora host train`: model shape, tokenizer, data mixture and optimisation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ModelShape(BaseModel):
    """Shape of the Llama-architecture host (tied input/output embeddings)."""

    model_config = ConfigDict(extra="forbid")

    hidden_size: int = Field(192, ge=16)
    intermediate_size: int = Field(512, ge=16)
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)
    max_positions: int = Field(256, ge=16)

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ModelShape:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_heads "
                f"({self.num_heads})."
            )
        return self


class TokenizerSpec(BaseModel):
    """How the byte-level BPE tokenizer is trained (on the same mixture as the model)."""

    model_config = ConfigDict(extra="forbid")

    vocab_size: int = Field(1536, ge=300, le=65536)
    task_lines: int = Field(20000, ge=0, description="task examples added to the tokenizer text")


class DataSpec(BaseModel):
    """The training mixture: task TRAIN-split examples and Shakespeare text, packed into rows."""

    model_config = ConfigDict(extra="forbid")

    families: list[str] | None = Field(None, description="task families; null means all")
    difficulties: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    difficulty_weights: list[float] | None = Field(
        None, description="relative sampling weight of each difficulty; null means uniform"
    )
    task_fraction: float = Field(0.6, ge=0.0, le=1.0, description="share of rows made of tasks")
    prompt_loss_weight: float = Field(
        1.0, ge=0.0, le=1.0, description="loss weight of task prompt tokens (answers weigh 1)"
    )
    seq_len: int = Field(256, ge=16)

    @field_validator("difficulties")
    @classmethod
    def _known_difficulties(cls, value: list[int]) -> list[int]:
        if not value or any(d < 1 or d > 5 for d in value):
            raise ValueError("difficulties must be a non-empty list of values in 1..5.")
        return value

    @model_validator(mode="after")
    def _one_weight_per_difficulty(self) -> DataSpec:
        weights = self.difficulty_weights
        if weights is not None and (
            len(weights) != len(self.difficulties) or min(weights) < 0 or sum(weights) <= 0
        ):
            raise ValueError(
                "difficulty_weights must give one non-negative weight per entry of difficulties "
                "(not all zero)."
            )
        return self


class OptimSpec(BaseModel):
    """AdamW with linear warm-up then cosine decay to `min_lr_ratio * lr`."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(400, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(3e-3, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    warmup_steps: int = Field(30, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast where the start-up probe shows it faster; "
        "weights and AdamW state stay fp32 either way")
    attention: Literal["auto", "sdpa", "eager"] = Field(
        "auto", description="the attention kernel for training; auto: the faster of the two on "
        "a short probe of the first batch (evolora.hosts.attention)")
    checkpoint_every: int = Field(50, ge=1)


class HostTrainConfig(BaseModel):
    """Everything `evolora host train` needs to reproduce the built-in host."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    model: ModelShape = Field(default_factory=ModelShape)
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    optim: OptimSpec = Field(default_factory=OptimSpec)

    @model_validator(mode="after")
    def _rows_fit_context(self) -> HostTrainConfig:
        if self.data.seq_len > self.model.max_positions:
            raise ValueError(
                f"data.seq_len ({self.data.seq_len}) must not exceed model.max_positions "
                f"({self.model.max_positions})."
            )
        return self
