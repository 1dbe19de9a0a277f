"""`execution: ray`: the learning phase sharded over Ray actors, each holding a host replica.

Learning dominates a generation's cost, and each organelle learns from its own plan alone
(phases/learning.py), so organelles can learn anywhere. Each `ShardWorker` actor loads the run's
host once and keeps a replica of the colony's population and learning rules. Every generation
the driver sends the colony's learning state (adapters, rule state, gene pool) and a share of the
organelles' plans to each actor; an actor learns for its share and returns its organelles' rows
of the state, which the driver writes back. On GPUs each actor is one device's worth of work: the
shape that scales to a large host; on one machine a seeded run equals a local one.
"""

from __future__ import annotations

from evolora.ecology.colony import adapter_population, slots_needed
from evolora.ecology.config import EcologyConfig
from evolora.ecology.genes import GenePool
from evolora.ecology.phases.learning import LearningPlan, learn_from_plan
from evolora.ecology.state import learning_state, load_learning_state
from evolora.errors import EvoloraError


class ShardWorker:
    """One actor's replica: the host, a population of the colony's shape and its rules."""

    def __init__(self, config_data: dict, device: str, precision) -> None:
        from evolora.ecology.learning import build_rules
        from evolora.hosts import load_host

        config = EcologyConfig.model_validate(config_data)
        self.host = load_host(config.host, device, precision)
        self.population = adapter_population(self.host, config, slots_needed(config))
        self.genes = GenePool(config.genes.rank, config.genes.capacity)
        self.rules = build_rules(config, self.host, self.population, self.genes)

    def learn(self, state: dict, genes: tuple[dict, dict], plans: list[LearningPlan]):
        """Load the colony's state, learn every plan; return the plans' slots' rows of the state
        and each plan's (fitness, tokens)."""
        load_learning_state(self.population, self.rules, state)
        self.genes.genes = GenePool.from_state(*genes, self.host.device).genes
        outcomes = [learn_from_plan(self.rules, plan) for plan in plans]
        slots = [plan.slot for plan in plans]
        state = learning_state(self.population, self.rules)
        rows = {key: tensor[slots].cpu() for key, tensor in state.items()}
        return slots, rows, outcomes


class LearningShards:
    """`workers` Ray actors that run the learning phase for the colony (see the module doc)."""

    def __init__(self, config: EcologyConfig, host) -> None:
        from evolora.execution.ray_executor import RayExecutor

        settings = config.execution
        self.executor = RayExecutor(settings.address, num_cpus=settings.workers)
        ray = self.executor.ray
        actor = ray.remote(num_cpus=1)(ShardWorker)
        data = config.model_dump(mode="json")
        self.workers = [
            actor.remote(data, str(host.device), host.precision) for _ in range(settings.workers)
        ]

    def learn(self, eco, plans: list[LearningPlan]) -> list[tuple[float, float]]:
        """Learn every plan on the actors (plan k on actor k mod workers); write the learned
        rows back into the colony and return each plan's (fitness, tokens), in order."""
        ray = self.executor.ray
        state = {k: v.cpu() for k, v in learning_state(eco.population, eco.rules).items()}
        state_ref = ray.put(state)
        genes_ref = ray.put((eco.genes.state(), eco.genes.state_tensors()))
        shares = [list(range(w, len(plans), len(self.workers))) for w in range(len(self.workers))]
        refs = [
            worker.learn.remote(state_ref, genes_ref, [plans[k] for k in share])
            for worker, share in zip(self.workers, shares, strict=True)
            if share
        ]
        try:
            answers = ray.get(refs)
        except ray.exceptions.RayError as problem:
            raise EvoloraError(
                f"A learning shard failed ({type(problem).__name__}); the run keeps its last "
                "checkpoint: continue it with `evolora run --resume RUN`."
            ) from problem
        outcomes: list = [None] * len(plans)
        for share, (slots, rows, results) in zip([s for s in shares if s], answers, strict=True):
            for key, tensor in state.items():
                tensor[slots] = rows[key]
            for k, result in zip(share, results, strict=True):
                outcomes[k] = result
        load_learning_state(eco.population, eco.rules, state)
        return outcomes

    def close(self) -> None:
        """Stop the actors (and the local Ray cluster this run started)."""
        ray = self.executor.ray
        for worker in self.workers:
            ray.kill(worker)
        self.executor.close()
