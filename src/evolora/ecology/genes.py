"""The gene pool: adapters the colony can recombine, with their provenance and per-cell scores.

A gene is one LoRA update per layer, kept as factors whose product is the exact update
(ΔW = B @ A, the LoRA scale folded into B), so genes from populations or PEFT folders of any rank
and alpha mix on equal terms. Genes come from organelles (snapshotted when they die with a
positive edge), from assimilated merges, and from PEFT adapters imported with
`evolora genes import`. A gene is stored at the pool's rank: a larger update is cut to that rank by
truncated SVD and the share of its squared norm that survives (`kept_energy`) is recorded.

`compose` writes a mix of genes into a population slot exactly: the composite of G genes of rank r
with coefficients c (one per gene and group of layers) is ΔW = sum_g c_g B_g A_g, which a slot of
rank >= G * r holds without loss (A stacked from the c_g A_g, B from the B_g).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from evolora.errors import EvoloraError
from evolora.lora import merge, read_peft_update

POOL_FILE = "pool.json"
_BLOCK = re.compile(r"\.(\d+)\.")

Factors = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Gene:
    """One adapter of the pool: provenance, the niche it was trained for, per-cell scores (e.g.
    holdout accuracy or paired edge) and its exact update as factors (A (r, in), B (out, r))."""

    name: str
    origin: str  # "organelle", "merge" or "import"
    generation: int
    niche: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    kept_energy: float = 1.0
    factors: dict[str, Factors] = field(default_factory=dict, repr=False)

    def meta(self) -> dict:
        """Everything but the tensors, JSON-ready."""
        data = asdict(self)
        del data["factors"]
        return data


def layer_groups(layer_names: list[str]) -> list[int]:
    """The group of each layer for per-group mixing coefficients: its transformer block (the first
    number in its name), or its own index when names carry no block number."""
    blocks = []
    for i, name in enumerate(layer_names):
        found = _BLOCK.search(name)
        blocks.append(int(found.group(1)) if found else i)
    index = {b: k for k, b in enumerate(sorted(set(blocks)))}
    return [index[b] for b in blocks]


def gene_from_slot(
    population,
    slot: int,
    rank: int,
    name: str,
    origin: str,
    generation: int,
    niche: str | None = None,
) -> Gene:
    """A gene from a population slot, cut to `rank` by truncated SVD when its update is larger."""
    adapter = {
        k: (population.A[k][slot].float(), population.scale * population.B[k][slot].float())
        for k in population.layer_names
    }
    return gene_from_factors(adapter, rank, name, origin, generation, niche)


def gene_from_peft(path: str | Path, rank: int, name: str, niche: str | None = None) -> Gene:
    """A gene from a PEFT LoRA adapter folder (its exact update, cut to `rank` when larger)."""
    return gene_from_factors(read_peft_update(path), rank, name, "import", 0, niche)


def gene_from_factors(
    adapter: dict[str, Factors],
    rank: int,
    name: str,
    origin: str,
    generation: int,
    niche: str | None = None,
) -> Gene:
    """A gene from per-layer factors (A, B with the scale folded into B), cut to `rank`."""
    result = merge([adapter], method="svd_soup", rank=rank)
    kept = min(result.kept_energy.values()) if result.kept_energy else 1.0
    factors = {k: (a.detach().clone(), b.detach().clone()) for k, (a, b) in result.tensors.items()}
    return Gene(name, origin, generation, niche, {}, kept, factors)


class GenePool:
    """Up to `capacity` genes of rank `rank`; when full, a new gene replaces the one with the
    lowest best score (imported genes are never evicted)."""

    def __init__(self, rank: int, capacity: int) -> None:
        if rank < 1 or capacity < 1:
            raise EvoloraError(
                f"A gene pool needs rank >= 1 and capacity >= 1, got {rank}, {capacity}."
            )
        self.rank, self.capacity = rank, capacity
        self.genes: list[Gene] = []

    def __len__(self) -> int:
        return len(self.genes)

    def add(self, gene: Gene) -> bool:
        """Add a gene, replacing an older gene of the same name (else evicting the weakest
        evictable one when full); False if nothing could go."""
        if gene.factors and gene_rank(gene) > self.rank:
            raise EvoloraError(
                f"Gene {gene.name!r} has rank {gene_rank(gene)}; this pool holds rank "
                f"{self.rank} (cut it with gene_from_slot)."
            )
        self.genes = [g for g in self.genes if g.name != gene.name]
        if len(self.genes) >= self.capacity:
            evictable = [g for g in self.genes if g.origin != "import"]
            if not evictable:
                return False
            self.genes.remove(min(evictable, key=lambda g: max(g.scores.values(), default=0.0)))
        self.genes.append(gene)
        return True

    def check_layers(self, population) -> None:
        """One clear error when a gene does not cover exactly the population's layers and shapes
        (a pool made on another host, or with other LoRA targets)."""
        for gene in self.genes:
            missing = sorted(set(population.layer_names) - set(gene.factors))
            extra = sorted(set(gene.factors) - set(population.layer_names))
            if missing or extra:
                which = f"lacks {missing[0]}" if missing else f"has {extra[0]} (not on the host)"
                raise EvoloraError(
                    f"Gene {gene.name!r} {which}: a gene pool only mixes into a population on "
                    "the host and LoRA targets its genes were made for."
                )
            for layer, (a, b) in gene.factors.items():
                d_in, d_out = population.layer_shapes[layer]
                if a.shape[1] != d_in or b.shape[0] != d_out:
                    raise EvoloraError(
                        f"Gene {gene.name!r} layer {layer} maps {a.shape[1]} -> {b.shape[0]}, "
                        f"the host's maps {d_in} -> {d_out}."
                    )

    def compose(
        self, population, slot: int, genes: list[int], coefficients: torch.Tensor, groups: list[int]
    ) -> None:
        """Write sum_g coefficients[g, group] * ΔW_g into `slot` exactly (see the module
        docstring); `genes` indexes this pool, -1 marks an unused place."""
        used = [(k, self.genes[g]) for k, g in enumerate(genes) if g >= 0]
        if sum(gene_rank(gene) for _, gene in used) > population.rank:
            raise EvoloraError(
                f"A mix of {len(used)} genes of rank {self.rank} needs a population "
                f"of rank >= {len(used) * self.rank}, not {population.rank}."
            )
        tensors = {}
        for name, group in zip(population.layer_names, groups, strict=True):
            d_in, d_out = population.layer_shapes[name]
            a = torch.zeros(population.rank, d_in, device=population.device)
            b = torch.zeros(d_out, population.rank, device=population.device)
            row = 0
            for k, gene in used:
                ga, gb = gene.factors[name]
                r = ga.shape[0]
                a[row : row + r] = float(coefficients[k, group]) * ga.to(a.device)
                b[:, row : row + r] = gb.to(b.device) / population.scale
                row += r
            tensors[name] = (a, b)
        population.set_member(slot, tensors)

    # ---- checkpoints and folders ----------------------------------------------------------------
    def state(self) -> dict:
        """The pool's metadata, JSON-ready (tensors go through `state_tensors`)."""
        return {
            "rank": self.rank,
            "capacity": self.capacity,
            "genes": [g.meta() for g in self.genes],
        }

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for i, gene in enumerate(self.genes):
            for layer, (a, b) in gene.factors.items():
                out[f"{i}/{layer}.A"] = a.contiguous()
                out[f"{i}/{layer}.B"] = b.contiguous()
        return out

    @classmethod
    def from_state(cls, state: dict, tensors: dict[str, torch.Tensor], device) -> GenePool:
        pool = cls(state["rank"], state["capacity"])
        for i, meta in enumerate(state["genes"]):
            layers = sorted({k.split("/", 1)[1][:-2] for k in tensors if k.startswith(f"{i}/")})
            factors = {
                layer: (tensors[f"{i}/{layer}.A"].to(device), tensors[f"{i}/{layer}.B"].to(device))
                for layer in layers
            }
            pool.genes.append(Gene(**meta, factors=factors))
        return pool

    def save(self, folder: Path) -> Path:
        """Write the pool as `pool.json` and one safetensors file of all genes' factors."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.cpu() for k, v in self.state_tensors().items()}, str(folder / "genes.safetensors")
        )
        (folder / POOL_FILE).write_text(json.dumps(self.state(), indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: Path, device="cpu") -> GenePool:
        """Read a pool written by `save`; one clear error when the folder is not a gene pool."""
        from safetensors.torch import load_file

        index, weights = folder / POOL_FILE, folder / "genes.safetensors"
        if not index.is_file() or not weights.is_file():
            raise EvoloraError(
                f"'{folder}' is not a gene pool (it needs {POOL_FILE} and "
                "genes.safetensors, as `evolora genes import` writes them)."
            )
        try:
            state = json.loads(index.read_text())
            return cls.from_state(state, load_file(str(weights)), device)
        except (ValueError, KeyError, TypeError) as problem:
            raise EvoloraError(f"Gene pool '{folder}' is damaged: {problem}.") from None


def gene_rank(gene: Gene) -> int:
    """The rank of a gene's factors."""
    return next(iter(gene.factors.values()))[0].shape[0]
