"""`ResoConfig`: the transformers config of a Reso model, and its presets.

The shape (vocabulary, width, depth, heads, FFN width, context) sits at the top level like any
transformers config; each extension is a section dict validated by `sections.ResoSections`
(pydantic, unknown keys forbidden), so `config.agency["max_foci"]` is the seed's `agency.max_foci`.
"""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig

from evolora.errors import EvoloraError
from evolora.reso.sections import EXTENSIONS, ResoSections
from evolora.telemetry.config_io import validate_config

# name: (layers, width, heads, FFN width); widths follow the seed (small 4 x 256, medium 8 x 512,
# large 24 x 1024); `tiny` exists for tests.
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 64, 4, 128),
    "small": (4, 256, 4, 512),
    "medium": (8, 512, 8, 1024),
    "large": (24, 1024, 16, 2816),
}


def check_sections(values: dict[str, Any]) -> ResoSections:
    """The validated extension sections, or one EvoloraError sentence naming the bad field."""
    return validate_config(values, ResoSections, "reso config")


class ResoConfig(PreTrainedConfig):
    """Shape and extension sections of a Reso model (see the module docstring)."""

    model_type = "reso"

    def __init__(
        self,
        vocab_size: int = 1536,
        hidden_size: int = 256,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 4,
        intermediate_size: int = 512,
        max_position_embeddings: int = 256,
        rope_theta: float = 10000.0,
        rms_norm_eps: float = 1e-6,
        initializer_range: float = 0.02,
        episode_boundary_ids: list[int] | None = None,
        prsc_binding_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        section_values = {name: kwargs.pop(name, None) or {} for name in EXTENSIONS}
        sections = check_sections(section_values)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.rope_theta = rope_theta
        self.rms_norm_eps = rms_norm_eps
        self.initializer_range = initializer_range
        self.episode_boundary_ids = list(episode_boundary_ids or [])
        self.prsc_binding_names = list(prsc_binding_names or [])
        for name in EXTENSIONS:
            setattr(self, name, getattr(sections, name).model_dump())
        kwargs.setdefault("tie_word_embeddings", True)
        super().__init__(**kwargs)
        if hidden_size % num_attention_heads or (hidden_size // num_attention_heads) % 2:
            raise EvoloraError(
                f"hidden_size ({hidden_size}) must split into num_attention_heads "
                f"({num_attention_heads}) heads of an even size."
            )

    @property
    def sections(self) -> ResoSections:
        """The extension sections as validated pydantic models."""
        return check_sections({name: getattr(self, name) for name in EXTENSIONS})

    def enabled(self, name: str) -> bool:
        """Whether extension `name` is on."""
        return bool(getattr(self, name)["enabled"])


def preset_config(preset: str = "small", ablate: list[str] | tuple[str, ...] = (),
                  overrides: dict[str, Any] | None = None, **shape: Any) -> ResoConfig:
    """A `ResoConfig` of a preset shape, with the `ablate`d extensions disabled and `overrides`
    ({section: {knob: value}}) applied."""
    if preset not in PRESETS:
        raise EvoloraError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}.")
    layers, width, heads, ffn = PRESETS[preset]
    sections: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (overrides or {}).items()}
    unknown = [name for name in [*ablate, *sections] if name not in EXTENSIONS]
    if unknown:
        raise EvoloraError(
            f"Unknown extension {unknown[0]!r}; valid extensions: {', '.join(EXTENSIONS)}."
        )
    for name in ablate:
        sections.setdefault(name, {})["enabled"] = False
    values = dict(num_hidden_layers=layers, hidden_size=width, num_attention_heads=heads,
                  intermediate_size=ffn)
    values.update(shape)
    return ResoConfig(**values, **sections)
