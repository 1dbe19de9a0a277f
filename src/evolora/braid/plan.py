"""What a braid runs: a `BraidSpec` (one decision) and a `Plan` (one decision per batch row).

A spec names the pool members to run (the first one leads: layer fusion starts out weighting its
states most), the fusion layers (after decoder layer l, 0-based), the strategy and its
parameters. A plan holds the same as tensors with one row per prompt, so one batched forward can
serve rows braided in different ways (the braider trains on such batches).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from evolora.braid.fusion import check_strategy, strategy_names
from evolora.errors import EvoloraError


@dataclass(frozen=True)
class BraidSpec:
    """One braiding decision: which models, which fusion layers, which strategy, which params."""

    models: tuple[str, ...]
    layers: tuple[int, ...] = ()
    strategy: str = "learned_weighted"
    temperature: float = 1.0
    top_k: int = 2

    def check(self, names: Sequence[str], depth: int) -> BraidSpec:
        """This spec if it fits a pool with members `names` and `depth` shared layers."""
        if not self.models:
            raise EvoloraError("A braid needs at least one model; models is empty.")
        unknown = [m for m in self.models if m not in names]
        if unknown:
            raise EvoloraError(f"Model(s) {unknown} are not in the pool; its models are {names}.")
        check_strategy(self.strategy)
        bad = [layer for layer in self.layers if not 0 <= layer < depth]
        if bad:
            raise EvoloraError(
                f"Fusion layer(s) {bad} are beyond the models' depth; use layers 0..{depth - 1}."
            )
        if not self.temperature > 0 or self.top_k < 1:
            raise EvoloraError(
                f"temperature must be > 0 and top_k >= 1, got {self.temperature} and {self.top_k}."
            )
        return self

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"models": list(self.models), "layers": list(self.layers),
                "strategy": self.strategy, "temperature": self.temperature, "top_k": self.top_k}


@dataclass
class Plan:
    """Per-row braid decisions: models (B, M) bool, layers (B, L) bool, strategy (B,) long
    (index into `strategy_names()`), temperature (B,) float, top_k (B,) long, lead (B,) long
    (the member the others join; one of the selected models)."""

    models: torch.Tensor
    layers: torch.Tensor
    strategy: torch.Tensor
    temperature: torch.Tensor
    top_k: torch.Tensor
    lead: torch.Tensor

    @classmethod
    def from_specs(cls, specs: Sequence[BraidSpec], names: Sequence[str], depth: int,
                   device: torch.device | str = "cpu") -> Plan:
        """Stack checked specs (one per row) into a plan for a pool with these member names."""
        order = strategy_names()
        models = torch.zeros(len(specs), len(names), dtype=torch.bool)
        layers = torch.zeros(len(specs), depth, dtype=torch.bool)
        for row, spec in enumerate(specs):
            spec.check(names, depth)
            models[row, [list(names).index(m) for m in spec.models]] = True
            layers[row, list(spec.layers)] = True
        return cls(
            models=models.to(device), layers=layers.to(device),
            strategy=torch.tensor([order.index(s.strategy) for s in specs], device=device),
            temperature=torch.tensor([float(s.temperature) for s in specs], device=device),
            top_k=torch.tensor([int(s.top_k) for s in specs], device=device),
            lead=torch.tensor([list(names).index(s.models[0]) for s in specs], device=device),
        )

    @classmethod
    def repeat(cls, spec: BraidSpec, rows: int, names: Sequence[str], depth: int,
               device: torch.device | str = "cpu") -> Plan:
        """The same spec for `rows` rows."""
        return cls.from_specs([spec] * rows, names, depth, device)

    def take(self, rows: torch.Tensor | Sequence[int]) -> Plan:
        """The plan of a subset of rows, in that order."""
        index = torch.as_tensor(rows, dtype=torch.long, device=self.models.device)
        return Plan(*(t.index_select(0, index) for t in (
            self.models, self.layers, self.strategy, self.temperature, self.top_k, self.lead)))

    def spec(self, row: int, names: Sequence[str]) -> BraidSpec:
        """Row `row` as a `BraidSpec` (its lead first)."""
        lead = int(self.lead[row])
        others = [n for m, (n, on) in enumerate(zip(names, self.models[row].tolist(), strict=True))
                  if on and m != lead]
        return BraidSpec(
            models=(names[lead], *others),
            layers=tuple(i for i, on in enumerate(self.layers[row].tolist()) if on),
            strategy=strategy_names()[int(self.strategy[row])],
            temperature=float(self.temperature[row]), top_k=int(self.top_k[row]),
        )
