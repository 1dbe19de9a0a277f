"""The ecology's generation loop: pay, forage, earn, learn, guard diversity, reproduce, assimilate.

One `Ecology` owns a run: the frozen host, one LoRA population holding every organelle, the task
market and the colony's books. `step()` runs one generation, phase by phase (phases/), and returns
its flat summary (metric prefixes `energy/`, `roi/`, `accuracy/`, `assimilation/`,
`population/`); everything it decides is written to the run folder, and a checkpoint after every
generation lets `resume` continue exactly.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np

from evolora.ecology.colony import Colony, adapter_population
from evolora.ecology.config import EcologyConfig
from evolora.ecology.evaluation import holdout_examples
from evolora.ecology.genes import GenePool, gene_from_slot
from evolora.ecology.learning import build_rules
from evolora.ecology.market import CellMarket, UCBBandit
from evolora.ecology.organelle import in_niche
from evolora.ecology.phases import (
    assimilation,
    evaluation,
    foraging,
    guard,
    learning,
    reproduction,
    tickets,
)
from evolora.ecology.phases.summary import generation_summary
from evolora.ecology.roles import Role, draw_example, probe_prompts, routing_prompts
from evolora.ecology.shards import LearningShards
from evolora.ecology.state import learning_state, load_learning_state, split_tensors
from evolora.tasks import Example, TaskGrid
from evolora.telemetry.rundir import RunDir


class Ecology:
    """One ecology run on a host; build with `Ecology.start` or `Ecology.resume`."""

    def __init__(self, config: EcologyConfig, host, run: RunDir):
        self.config, self.host, self.run = config, host, run
        self.grid = TaskGrid(config.grid.families, config.grid.difficulties)
        self.colony = Colony(config)
        self.population = adapter_population(host, config, self.colony.slots_needed)
        self.genes = (
            GenePool.load(Path(config.genes.pool), host.device)
            if config.genes.pool
            else GenePool(config.genes.rank, config.genes.capacity)
        )
        self.genes.check_layers(self.population)
        self.rules = build_rules(config, host, self.population, self.genes)
        self._shards: LearningShards | None = None  # started by the first sharded learning
        self.market = CellMarket(self.grid.cells, config.environment)
        self.bandit = UCBBandit(self.grid.cells, config.environment.ucb_c)
        self.rng = np.random.default_rng(config.seed)
        self.generation = 0
        self.attempt = 0
        self.merges = 0
        self.gating = Counter()
        self.snapshots: list[dict] = []
        self.last_eval: dict | None = None
        self.last_scores: dict[str, list[float]] = {}  # per holdout example, by variant
        selection = config.splits.selection_fraction
        self.holdout = holdout_examples(
            self.grid, config.evaluation.per_cell, config.seed, selection
        )
        self.host_scores: list[float] | None = None  # the frozen host's, computed once
        self.probe = probe_prompts(
            self.grid, selection, config.assimilation_tuning.holdout_probe_size, config.seed
        )
        self.merged_probe: tuple[int, np.ndarray] = (-1, np.zeros(0))  # (merges, scores)
        self.route_examples = routing_prompts(
            self.grid, selection, config.evaluation.route_prompts, config.seed
        )
        self.adapter_params = sum(
            self.population.A[k][0].numel() + self.population.B[k][0].numel()
            for k in self.population.layer_names
        )
        self.flops_per_token = 2.0 * (host.n_params + self.adapter_params)

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    def start(cls, config: EcologyConfig, host, run: RunDir) -> Ecology:
        """A fresh colony: `population.initial` organelles, each its own species."""
        ecology = cls(config, host, run)
        for _ in range(config.population.initial):
            reproduction.seed_from_merged(ecology, config.energy.initial)
        return ecology

    @classmethod
    def resume(cls, config: EcologyConfig, host, run: RunDir) -> Ecology:
        """Continue a run from its latest good checkpoint, exactly as if it had never stopped."""
        checkpoint = run.load_checkpoint(device=host.device)
        ecology = cls(config, host, run)
        load_learning_state(ecology.population, ecology.rules, checkpoint.tensors)
        _, parts = split_tensors(checkpoint.tensors)
        ecology.genes.genes = GenePool.from_state(
            checkpoint.state["genes"], parts.get("genes", {}), host.device
        ).genes
        state = checkpoint.state
        ecology.generation = state["generation"]
        ecology.attempt = state["attempt"] + 1
        ecology.merges = state["merges"]
        ecology.gating = Counter(state["gating"])
        ecology.snapshots = state["snapshots"]
        ecology.last_eval = state["last_eval"]
        ecology.colony.load_state(state["colony"])
        ecology.market.load_state(state["market"])
        ecology.bandit.load_state(state["bandit"])
        ecology.rng.bit_generator.state = state["rng"]
        return ecology

    def checkpoint(self) -> None:
        state = {
            "generation": self.generation,
            "attempt": self.attempt,
            "merges": self.merges,
            "gating": dict(self.gating),
            "snapshots": self.snapshots,
            "last_eval": self.last_eval,
            "colony": self.colony.state(),
            "market": self.market.state(),
            "bandit": self.bandit.state(),
            "rng": self.rng.bit_generator.state,
            "genes": self.genes.state(),
        }
        tensors = learning_state(self.population, self.rules)
        tensors.update({f"genes/{k}": v for k, v in self.genes.state_tensors().items()})
        self.run.save_checkpoint(self.generation, tensors, state)

    def close(self) -> None:
        """Save the gene pool into RUN/genes, give the host back its plain layers and close the
        run's streams."""
        if self._shards is not None:
            self._shards.close()
            self._shards = None
        if len(self.genes):
            self.genes.save(self.run.path / "genes")
        self.population.detach()
        self.run.close()

    @property
    def finished(self) -> bool:
        return self.generation >= self.config.generations

    # -- one generation ------------------------------------------------------------------------

    def step(self) -> dict:
        """Run one generation and return its summary (also written to gen_summaries.jsonl)."""
        started = time.perf_counter()
        self.generation += 1
        active = tickets.pay_tickets(self)
        episodes = foraging.forage(self, active)
        learned = learning.learn(self, active)
        guard.guard_diversity(self)
        born, died = reproduction.reproduce_and_cull(self)
        decision = assimilation.try_assimilation(self)
        evaluated = None
        if self.generation % self.config.evaluation.every == 0 or self.finished:
            evaluated = self.evaluate()
        summary = generation_summary(
            self, active, episodes, learned, born, died, decision, evaluated
        )
        summary["time/generation_s"] = time.perf_counter() - started
        self.write("gen_summaries", summary)
        self.checkpoint()
        return summary

    def evaluate(self) -> dict:
        """Holdout accuracy of host, best organelle, merged adapter and routed colony."""
        return evaluation.evaluate(self)

    def routes(self) -> dict:
        """The routed colony's table: the slot that serves each cell."""
        return evaluation.routes(self)

    # -- what the phases share -----------------------------------------------------------------

    def snapshot(self, slot: int, name: str, origin: str, niche, edges: dict) -> None:
        """Put a slot's adapter into the gene pool (replacing an older gene of that name), scored
        per cell by its mean paired edge over the merged adapter."""
        gene = gene_from_slot(
            self.population, slot, self.genes.rank, name, origin, self.generation, niche
        )
        gene.scores = {cell: total / n for cell, (total, _, n) in edges.items() if n}
        self.genes.add(gene)

    def learning_shards(self) -> LearningShards | None:
        """The Ray actors the learning phase is sharded over (`execution.engine: ray`), started
        on first use; None when learning runs in this process."""
        if self.config.execution.engine == "ray" and self._shards is None:
            self._shards = LearningShards(self.config, self.host)
        return self._shards

    def niche_cells(self, niche: str | None) -> list:
        """The grid's cells in a niche."""
        return [cell for cell in self.grid.cells if in_niche(niche, cell)]

    def example(self, cell, role: Role) -> Example:
        """An example of the cell reserved for `role` (roles.py)."""
        return draw_example(self.grid, self.rng, cell, role, self.config.splits.selection_fraction)

    def write(self, stream: str, record: dict) -> None:
        """Append a record to one of the run folder's JSONL streams."""
        self.run.stream(stream).append(record)
