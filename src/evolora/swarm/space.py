"""Search spaces: typed parameters (float, int, categorical, conditional) and the unit cube.

Every parameter owns one coordinate of the unit cube [0, 1]^d, so distances, regions and heatmaps
mean the same for every kind: a float maps linearly (or in log) onto its coordinate, an int onto
equal-width cells (one per value, or log-spaced), a categorical onto one equal cell per choice.
A conditional parameter keeps its coordinate while inactive; decoding simply leaves it out.

    space = Space.from_dict({
        "lr": {"kind": "float", "low": 1e-5, "high": 1e-2, "log": True},
        "optimizer": {"kind": "categorical", "choices": ["adam", "sgd"]},
        "momentum": {"kind": "float", "low": 0.0, "high": 0.99,
                     "condition": {"parent": "optimizer", "values": ["sgd"]}},
    })
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from evolora.errors import EvoloraError

Scalar = bool | int | float | str | None


class Condition(BaseModel):
    """The parameter is active only when `parent` takes one of `values`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    parent: str
    values: list[Scalar] = Field(min_length=1)


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = ""
    condition: Condition | None = None


class FloatParam(_Param):
    """A real number in [low, high], searched linearly or (log=True) in log scale."""

    kind: Literal["float"] = "float"
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_bounds(self.low, self.high, self.log)
        return self

    def decode(self, u: float) -> float:
        """The value at coordinate u."""
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return float(min(self.high, max(self.low, math.exp(lo + u * (hi - lo)))))
        return float(self.low + u * (self.high - self.low))

    def encode(self, value: Any) -> float:
        """The coordinate of a value."""
        value = float(value)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return (math.log(value) - lo) / (hi - lo)
        return (value - self.low) / (self.high - self.low)

    def contains(self, value: Any) -> bool:
        """Whether `value` is a valid value of this parameter."""
        return isinstance(value, (int, float)) and self.low <= float(value) <= self.high


class IntParam(_Param):
    """An integer in [low, high] (both included), linear cells or (log=True) log-spaced."""

    kind: Literal["int"] = "int"
    low: int
    high: int
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_bounds(self.low, self.high, self.log)
        return self

    def decode(self, u: float) -> int:
        """The value whose cell holds coordinate u."""
        if self.log:
            lo, hi = math.log(self.low - 0.5 + 1e-9), math.log(self.high + 0.5)
            value = round(math.exp(lo + u * (hi - lo)))
        else:
            value = self.low + math.floor(u * (self.high - self.low + 1))
        return int(min(self.high, max(self.low, value)))

    def encode(self, value: Any) -> float:
        """The centre of the value's cell."""
        value = int(value)
        if self.log:
            lo, hi = math.log(self.low - 0.5 + 1e-9), math.log(self.high + 0.5)
            return (math.log(value) - lo) / (hi - lo)
        return (value - self.low + 0.5) / (self.high - self.low + 1)

    def contains(self, value: Any) -> bool:
        """Whether `value` is a valid value of this parameter."""
        return (
            isinstance(value, (int, np.integer))
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )


class CategoricalParam(_Param):
    """One of `choices`, each owning an equal cell of the coordinate."""

    kind: Literal["categorical"] = "categorical"
    choices: list[Scalar]

    @model_validator(mode="after")
    def _check(self) -> CategoricalParam:
        if not self.choices:
            raise ValueError("choices must not be empty")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ValueError("choices must be distinct")
        return self

    def decode(self, u: float) -> Scalar:
        """The choice whose cell holds coordinate u."""
        index = min(len(self.choices) - 1, max(0, math.floor(u * len(self.choices))))
        return self.choices[index]

    def encode(self, value: Any) -> float:
        """The centre of the choice's cell."""
        return (self.choices.index(value) + 0.5) / len(self.choices)

    def contains(self, value: Any) -> bool:
        """Whether `value` is one of the choices."""
        return value in self.choices


def _check_bounds(low: float, high: float, log: bool) -> None:
    if not low < high:
        raise ValueError(f"low must be below high (got low={low}, high={high})")
    if log and low <= 0:
        raise ValueError(f"a log-scale parameter needs low > 0 (got low={low})")


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="kind")]
_PARAM = TypeAdapter(Param)
KINDS = ("float", "int", "categorical")


def parse_param(name: str, spec: Mapping[str, Any]) -> FloatParam | IntParam | CategoricalParam:
    """One parameter from its YAML/dict spec; EvoloraError naming it when the spec is invalid."""
    if not isinstance(spec, Mapping):
        raise EvoloraError(f"Search-space parameter '{name}' must be a mapping with a 'kind'.")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise EvoloraError(
            f"Search-space parameter '{name}' has unknown kind {kind!r}; valid kinds are "
            f"{', '.join(KINDS)}."
        )
    try:
        return _PARAM.validate_python({**spec, "name": name})
    except ValidationError as problem:
        first = problem.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "spec"
        message = first["msg"].removeprefix("Value error, ")
        raise EvoloraError(f"Search-space parameter '{name}' ({where}): {message}.") from None


class Space:
    """An ordered set of parameters and their unit-cube encoding."""

    def __init__(self, params: list[FloatParam | IntParam | CategoricalParam]) -> None:
        if not params:
            raise EvoloraError("The search space is empty; give at least one parameter.")
        self.params = list(params)
        self.names = [param.name for param in self.params]
        if len(set(self.names)) != len(self.names):
            raise EvoloraError("Search-space parameter names must be distinct.")
        seen: dict[str, Any] = {}
        for param in self.params:
            cond = param.condition
            if cond is not None:
                parent = seen.get(cond.parent)
                if parent is None:
                    raise EvoloraError(
                        f"Parameter '{param.name}' is conditional on '{cond.parent}', which must "
                        "be a parameter listed before it."
                    )
                bad = [value for value in cond.values if not parent.contains(value)]
                if bad:
                    raise EvoloraError(
                        f"Parameter '{param.name}' is conditional on {cond.parent}={bad[0]!r}, "
                        f"which is not a value of '{cond.parent}'."
                    )
            seen[param.name] = param

    @classmethod
    def from_dict(cls, spec: Mapping[str, Mapping[str, Any]]) -> Space:
        """A space from `{name: {kind: ..., ...}}` (the YAML form)."""
        if not isinstance(spec, Mapping) or not spec:
            raise EvoloraError("The search space must be a non-empty mapping of name -> spec.")
        return cls([parse_param(str(name), value) for name, value in spec.items()])

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The YAML form of the space (inverse of `from_dict`)."""
        return {
            p.name: p.model_dump(exclude={"name"}, exclude_none=True, exclude_defaults=False)
            for p in self.params
        }

    @property
    def dim(self) -> int:
        """Number of unit-cube coordinates (one per parameter)."""
        return len(self.params)

    def decode(self, u: np.ndarray) -> dict[str, Any]:
        """The configuration at unit-cube point u (inactive conditional parameters left out)."""
        values: dict[str, Any] = {}
        for param, x in zip(self.params, np.clip(u, 0.0, 1.0), strict=False):
            if self._active(param, values):
                values[param.name] = param.decode(float(x))
        return values

    def encode(self, values: Mapping[str, Any]) -> np.ndarray:
        """The unit-cube point of a configuration (inactive parameters at the centre, 0.5)."""
        u = np.full(self.dim, 0.5)
        for index, param in enumerate(self.params):
            if param.name in values and self._active(param, values):
                u[index] = param.encode(values[param.name])
        return np.clip(u, 0.0, 1.0)

    def active_mask(self, values: Mapping[str, Any]) -> np.ndarray:
        """Which coordinates matter for this configuration."""
        return np.array([self._active(param, values) for param in self.params])

    @staticmethod
    def _active(param: Any, values: Mapping[str, Any]) -> bool:
        cond = param.condition
        return cond is None or (cond.parent in values and values[cond.parent] in cond.values)

    def __repr__(self) -> str:
        return f"Space({', '.join(f'{p.name}:{p.kind}' for p in self.params)})"
