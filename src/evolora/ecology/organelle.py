"""An organelle: one LoRA adapter slot of the colony, with its energy, lineage and track record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

Cell = tuple[str, int]


def cell_key(cell: Cell) -> str:
    """A JSON-friendly name for a cell, e.g. 'math:2'."""
    return f"{cell[0]}:{cell[1]}"


def niche_family(niche: str | None) -> str | None:
    """The task family a niche lies in ('math' for 'math' and 'math:2'); None for a generalist."""
    return niche.split(":")[0] if niche else None


def in_niche(niche: str | None, cell: Cell) -> bool:
    """Whether a cell lies in a niche: a family name ('math'), a cell key ('math:2'), or None
    (a generalist's niche holds every cell)."""
    return niche is None or niche in (cell[0], cell_key(cell))


@dataclass
class Organelle:
    """State of one living organelle; its adapter tensors live in `slot` of the LoRA population."""

    id: int
    slot: int
    species: int
    parent: int | None
    born: int
    energy: float
    niche: str | None = None  # the family or cell it specialises on; None: every cell
    starving: int = 0
    wins: int = 0
    revenue: float = 0.0
    cost: float = 0.0
    successes: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    # Recent paired episodes: [treatment reward, control reward] on the same prompt.
    recent: list[list[float]] = field(default_factory=list)
    # Per cell: [sum, sum of squares, count] of (treatment - control) rewards against the
    # current merged adapter.
    edge: dict[str, list[float]] = field(default_factory=dict)

    @property
    def roi(self) -> float:
        """Lifetime revenue / cost ratio."""
        return self.revenue / self.cost if self.cost > 0 else self.revenue

    def record(
        self, cell: Cell, success: bool, treatment: float, control: float, window: int
    ) -> None:
        """Add one episode to the per-cell counts, the paired edge and the recent window."""
        key = cell_key(cell)
        book = self.successes if success else self.failures
        book[key] = book.get(key, 0) + 1
        total, squares, n = self.edge.get(key, [0.0, 0.0, 0])
        gain = treatment - control
        self.edge[key] = [total + gain, squares + gain * gain, n + 1]
        self.recent.append([treatment, control])
        del self.recent[:-window]

    def edge_bound(self, cell: Cell, z: float = 1.0) -> tuple[float, int]:
        """Lower confidence bound (mean - z standard errors) of the paired edge on a cell, and the
        number of episodes it rests on."""
        total, squares, n = self.edge.get(cell_key(cell), [0.0, 0.0, 0])
        if n < 2:
            return float("-inf"), n
        mean = total / n
        variance = max(0.0, squares / n - mean * mean) * n / (n - 1)
        return mean - z * (variance / n) ** 0.5, n

    def mean_edge(self) -> float:
        """Mean paired edge (treatment - control) over every cell served; 0 with no episodes."""
        total = sum(book[0] for book in self.edge.values())
        count = sum(book[2] for book in self.edge.values())
        return total / count if count else 0.0

    def forget_control(self) -> None:
        """Drop the evidence measured against a merged adapter that has since changed."""
        self.recent.clear()
        self.edge.clear()
        self.wins = 0

    def success_counts(self, cells: list[Cell]) -> tuple[list[int], list[int]]:
        """Successes and failures on each of the given cells."""
        keys = [cell_key(c) for c in cells]
        return [self.successes.get(k, 0) for k in keys], [self.failures.get(k, 0) for k in keys]

    def state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> Organelle:
        return cls(**state)
