"""The config of `evolora reso train`: model preset and sections, data mixture, optimisation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evolora.hosts.train_config import DataSpec, OptimSpec
from evolora.reso.config import PRESETS
from evolora.reso.sections import EXTENSIONS, ResoSections


class ResoModelSpec(BaseModel):
    """Which Reso model to train: a preset shape, extensions switched off, knob overrides."""

    model_config = ConfigDict(extra="forbid")

    preset: str = "small"
    ablate: list[str] = Field(default_factory=list, description="extensions to disable")
    sections: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="{extension: {knob: value}} overrides"
    )
    max_positions: int = Field(256, ge=16)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}.")
        return value

    @field_validator("ablate")
    @classmethod
    def _known_extensions(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in EXTENSIONS]
        if unknown:
            raise ValueError(f"unknown extension {unknown[0]!r}; valid: {', '.join(EXTENSIONS)}.")
        return value

    @field_validator("sections")
    @classmethod
    def _valid_sections(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        ResoSections.model_validate(value)
        return value


class ResoTrainConfig(BaseModel):
    """Everything `evolora reso train` needs; batches depend only on (seed, step)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    model: ResoModelSpec = Field(default_factory=ResoModelSpec)
    data: DataSpec = Field(default_factory=lambda: DataSpec(seq_len=128))
    optim: OptimSpec = Field(
        default_factory=lambda: OptimSpec(steps=300, batch_size=16, lr=2e-3, warmup_steps=20)
    )
    extra_text: str | None = Field(
        None, description="a local HF dataset folder or JSONL file with a 'text' column "
        "(the guanaco schema), mixed with the plays"
    )
    max_plays: int | None = Field(
        None, ge=1, description="use only this many training and held-out plays (smoke runs)"
    )
    eval_every: int = Field(50, ge=1, description="steps between held-out evaluations")
    eval_rows: int = Field(32, ge=1, description="held-out Shakespeare rows per evaluation")

    @model_validator(mode="after")
    def _rows_fit_context(self) -> ResoTrainConfig:
        if self.data.seq_len > self.model.max_positions:
            raise ValueError(
                f"data.seq_len ({self.data.seq_len}) must not exceed model.max_positions "
                f"({self.model.max_positions})."
            )
        return self
