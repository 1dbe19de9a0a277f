"""The ecology's generation loop: pay, forage, earn, learn, guard diversity, reproduce, assimilate.

One `Ecology` owns a run: the frozen host, one LoRA population holding every organelle, the task
market and the colony's books. `step()` runs one generation and returns its flat summary (metric
prefixes `energy/`, `roi/`, `accuracy/`, `assimilation/`, `population/`); everything it decides is
written to the run folder, and a checkpoint after every generation lets `resume` continue exactly.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from evolora.ecology import assimilation as gate
from evolora.ecology.colony import MERGED_SLOT, Colony, adapter_population
from evolora.ecology.config import EcologyConfig
from evolora.ecology.diversity import (
    effective_population,
    gini,
    over_cap,
    redistribute,
    species_shares,
)
from evolora.ecology.energy import Compute, apply, compute_cost, pay_ticket, settle_episode
from evolora.ecology.evaluation import (
    evaluate,
    holdout_examples,
    route_table,
    slot_scores,
    summarize,
)
from evolora.ecology.genes import GenePool, gene_from_slot
from evolora.ecology.learning import RULES, LearningJob, target_lengths
from evolora.ecology.market import CellMarket, UCBBandit
from evolora.ecology.organelle import Organelle, cell_key, in_niche
from evolora.ecology.roles import Role, role_of
from evolora.ecology.routing import thompson_route
from evolora.lora import merge
from evolora.tasks import Example, TaskGrid, score
from evolora.telemetry.rundir import RunDir


def split_tensors(tensors: dict) -> tuple[dict, dict[str, dict]]:
    """A checkpoint's tensors split into the population's and the other parts' ("rule/NAME",
    "genes"), each with its own keys."""
    population, parts = {}, {}
    for key, value in tensors.items():
        if key.startswith("rule/"):
            _, name, rest = key.split("/", 2)
            parts.setdefault(f"rule/{name}", {})[rest] = value
        elif key.startswith("genes/"):
            parts.setdefault("genes", {})[key.split("/", 1)[1]] = value
        else:
            population[key] = value
    return population, parts


class Ecology:
    """One ecology run on a host; build with `Ecology.start` or `Ecology.resume`."""

    def __init__(self, config: EcologyConfig, host, run: RunDir):
        self.config, self.host, self.run = config, host, run
        self.grid = TaskGrid(config.grid.families, config.grid.difficulties)
        rule_classes = [RULES[name] for name in config.learning.rules]
        self.colony = Colony(config)
        self.population = adapter_population(host, config, self.colony.slots_needed)
        self.genes = (
            GenePool.load(Path(config.genes.pool), host.device)
            if config.genes.pool
            else GenePool(config.genes.rank, config.genes.capacity)
        )
        self.genes.check_layers(self.population)
        self.rules = [
            c(getattr(config.learning, c.name), host, self.population, self.genes)
            for c in rule_classes
        ]
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
        self.holdout = holdout_examples(self.grid, config.evaluation.per_cell, config.seed)
        self.host_scores: list[float] | None = None  # the frozen host's, computed once
        self.probe = self._probe_examples()
        self._merged_probe: tuple[int, np.ndarray] = (-1, np.zeros(0))  # (merges, scores)
        self.route_examples = self._route_examples()
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
            ecology._seed_from_merged(config.energy.initial)
        return ecology

    @classmethod
    def resume(cls, config: EcologyConfig, host, run: RunDir) -> Ecology:
        """Continue a run from its latest good checkpoint, exactly as if it had never stopped."""
        checkpoint = run.load_checkpoint(device=host.device)
        ecology = cls(config, host, run)
        population, parts = split_tensors(checkpoint.tensors)
        ecology.population.load_state_tensors(population)
        for rule in ecology.rules:
            rule.load_state_tensors(parts.get(f"rule/{rule.name}", {}))
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
        tensors = dict(self.population.state_tensors())
        for rule in self.rules:
            tensors.update({f"rule/{rule.name}/{k}": v for k, v in rule.state_tensors().items()})
        tensors.update({f"genes/{k}": v for k, v in self.genes.state_tensors().items()})
        self.run.save_checkpoint(self.generation, tensors, state)

    def close(self) -> None:
        """Save the gene pool into RUN/genes, give the host back its plain layers and close the
        run's streams."""
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
        active = self._pay_tickets()
        episodes = self._forage(active)
        learned = self._learn(active)
        self._guard_diversity()
        born, died = self._reproduce_and_cull()
        decision = self._try_assimilation()
        evaluated = None
        if self.generation % self.config.evaluation.every == 0 or self.finished:
            evaluated = self.evaluate()
        summary = self._summary(active, episodes, learned, born, died, decision, evaluated)
        summary["time/generation_s"] = time.perf_counter() - started
        self._write("gen_summaries", summary)
        self.checkpoint()
        return summary

    def _pay_tickets(self) -> list[Organelle]:
        active = []
        for o in self.colony.organelles:
            o.energy, paid = pay_ticket(o.energy, self.config.energy.m)
            o.starving = 0 if paid else o.starving + 1
            if paid:
                active.append(o)
        return active

    def _forage(self, active: list[Organelle]) -> list[dict]:
        """Serve the bandit's cells: each active organelle solves tasks on its routed cell, and the
        merged adapter solves the same prompts as the paired control."""
        if not active:
            return []
        grid, env = self.config.grid, self.config.environment
        cells = self.bandit.select(grid.cells_per_generation, self.rng)
        jobs = [(o, self._route(o, cells)) for o in active]
        examples = [
            [self._train_example(cell, Role.forage) for _ in range(grid.episodes_per_organelle)]
            for _, cell in jobs
        ]
        flat = [ex for batch in examples for ex in batch]
        slots = [o.slot for (o, _), batch in zip(jobs, examples, strict=True) for _ in batch]
        t0 = time.perf_counter()
        completions = self.host.generate(
            [ex.prompt for ex in flat] * 2,
            max_new_tokens=grid.max_new_tokens,
            adapters=self.population,
            adapter_ids=slots + [MERGED_SLOT] * len(flat),
        )
        seconds = (time.perf_counter() - t0) / len(completions)
        treatment, control = completions[: len(flat)], completions[len(flat) :]
        prompt_tokens = target_lengths(self.host, [ex.prompt for ex in flat])
        answer_tokens = target_lengths(self.host, treatment)

        records, i = [], 0
        by_cell: dict = {}
        for (o, cell), batch in zip(jobs, examples, strict=True):
            gen_t, gen_c = [], []
            for ex in batch:
                reward, baseline = score(ex, treatment[i]), score(ex, control[i])
                success = reward >= 1.0
                flops = self.flops_per_token * (prompt_tokens[i] + answer_tokens[i] + 1)
                cost = compute_cost(
                    Compute(flops, seconds, self.adapter_params), self.config.energy
                )
                books = settle_episode(self.market.prices[cell], reward, success, cost, env)
                o.energy = apply(o.energy, books.net, self.config.energy.cap)
                o.revenue += books.revenue
                o.cost += books.cost
                o.record(cell, success, reward, baseline, self.config.assimilation_tuning.window)
                gen_t.append(reward)
                gen_c.append(baseline)
                by_cell.setdefault(cell, []).append((success, books.revenue))
                records.append(
                    {
                        "generation": self.generation,
                        "attempt": self.attempt,
                        "organelle": o.id,
                        "cell": cell_key(cell),
                        "prompt": ex.prompt,
                        "answer": ex.answer,
                        "completion": treatment[i],
                        "reward": reward,
                        "control_reward": baseline,
                        "success": success,
                        "price": self.market.prices[cell],
                        "revenue": books.revenue,
                        "cost": books.cost,
                        "roi": books.roi,
                        "energy": o.energy,
                    }
                )
                i += 1
            if np.mean(gen_t) > np.mean(gen_c):
                o.wins += 1
        for cell, outcomes in by_cell.items():
            self.market.update(cell, float(np.mean([s for s, _ in outcomes])))
            self.bandit.observe(cell, float(np.mean([r for _, r in outcomes])), n=len(outcomes))
        for record in records:
            self._write("episodes", record)
        return records

    def _learn(self, active: list[Organelle]) -> list[float]:
        """Every active organelle learns, by each configured rule in turn, on fresh training tasks
        of its niche (cells drawn in proportion to their market price); the compute each rule
        reports is charged to the organelle.
        Returns each organelle's fitness (mean per-token answer log-likelihood)."""
        learning = self.config.learning
        if not active:
            return []
        fitness, tokens = np.zeros(len(active)), np.zeros(len(active))
        for _ in range(learning.steps):
            jobs = []
            for k, o in enumerate(active):
                # The market is the curriculum: cells the colony fails (high prices) are learned
                # more often than cells it already solves.
                niche = self._niche_cells(o.niche)
                prices = np.array([self.market.prices[c] for c in niche])
                picks = self.rng.choice(len(niche), size=learning.batch, p=prices / prices.sum())
                batch = [self._train_example(niche[i], Role.learn) for i in picks]
                jobs.append(LearningJob(o.slot, batch, self.colony.scratch_for(k)))
            for rule in self.rules:
                results = rule.learn(jobs, self.rng)
                acted = np.array([r.fitness for r in results])
                fitness = np.where(np.isfinite(acted), acted, fitness)
                tokens += [r.tokens for r in results]
        for o, spent in zip(active, tokens, strict=True):
            compute = Compute(self.flops_per_token * spent, 0.0, self.adapter_params)
            cost = compute_cost(compute, self.config.energy)
            o.energy = apply(o.energy, -cost, self.config.energy.cap)
            o.cost += cost
        return fitness.tolist()

    def _guard_diversity(self) -> None:
        guard = self.config.diversity
        if not guard.enabled or len(self.colony.organelles) < 2:
            return
        energies = self.colony.energies()
        if gini(energies) > guard.energy_gini_cap:
            self.gating["diversity/redistributions"] += 1
            for o, e in zip(
                self.colony.organelles,
                redistribute(energies, guard.redistribute_fraction),
                strict=True,
            ):
                o.energy = float(e)

    def _reproduce_and_cull(self) -> tuple[int, int]:
        energy, repro = self.config.energy, self.config.reproduction
        died = 0
        for o in list(self.colony.organelles):
            if o.starving > energy.grace_generations:
                if o.mean_edge() > 0:  # its genes are worth keeping
                    self._snapshot(o.slot, f"organelle-{o.id}", "organelle", o.niche, o.edge)
                self.colony.remove(o)
                self.population.reset_member(o.slot)
                died += 1
        born = 0
        rich = sorted(self.colony.organelles, key=lambda o: -o.energy)
        for parent in rich:
            if parent.energy < repro.energy_threshold:
                break
            species = [o.species for o in self.colony.organelles]
            if self.config.diversity.enabled and parent.species in over_cap(
                species, self.config.diversity.species_share_cap
            ):
                self.gating["diversity/species_capped"] += 1
                continue
            child = self.colony.spawn(parent, parent.energy / 2, self.generation)
            if child is None:
                break
            parent.energy /= 2
            self._snapshot(
                parent.slot, f"organelle-{parent.id}", "organelle", parent.niche, parent.edge
            )
            self._copy_mutated(parent.slot, child.slot)
            born += 1
        while len(self.colony.organelles) < self.config.population.min:
            self._seed_from_merged(energy.initial)
            born += 1
        return born, died

    def _try_assimilation(self) -> gate.GateDecision | None:
        """Test the strongest repeat winner; merge it into the colony's adapter if it passes."""
        tuning = self.config.assimilation_tuning
        if not tuning.enabled:
            return None
        winners = [o for o in self.colony.organelles if o.wins >= tuning.min_wins]
        if not winners:
            return None
        candidate = max(winners, key=lambda o: np.mean([t - c for t, c in o.recent]))
        decision = gate.GateDecision(organelle=candidate.id, generation=self.generation)
        self.gating["assimilation/attempts"] += 1
        candidate.energy = gate.energy_stage(decision, candidate.energy, candidate.roi, tuning)
        pairs = np.array(candidate.recent)
        passed_uplift = gate.uplift_stage(decision, pairs[:, 0], pairs[:, 1], tuning, self.rng)
        if not decision.reasons and passed_uplift:
            trial = self.colony.scratch[-1]
            floor = tuning.weight_floor
            weights = np.array([decision.control_mean, decision.treatment_mean]).clip(floor)
            merged = merge(
                self.population,
                [MERGED_SLOT, candidate.slot],
                (weights / weights.sum()).tolist(),
                method=tuning.merge_method,
                rank=self.config.lora.rank,
            )
            self.population.set_member(trial, merged.tensors)
            decision.kept_energy = min(merged.kept_energy.values())
            before, after = self._probe_scores(MERGED_SLOT), self._probe_scores(trial)
            if gate.holdout_stage(decision, before, after, tuning):
                # Telemetry only (never a gate): the merge's effect on the evaluation holdout.
                held = slot_scores(
                    self.host,
                    self.population,
                    [MERGED_SLOT, trial],
                    self.holdout,
                    self.config.grid.max_new_tokens,
                )
                decision.eval_before, decision.eval_after = (
                    summarize(s, self.holdout)["overall"] for s in held
                )
                self.population.clone(trial, MERGED_SLOT)
                self.merges += 1
                self._snapshot(MERGED_SLOT, f"merge-{self.merges}", "merge", None, {})
                self._after_merge(tuning.offspring)
        candidate.wins = 0
        self._log_decision(decision)
        return decision

    def _after_merge(self, offspring: int) -> None:
        """Old control scores describe the previous merged adapter: start every window afresh,
        then seed offspring of the new merged adapter (replacing the poorest when full)."""
        for o in self.colony.organelles:
            o.forget_control()
        for _ in range(offspring):
            if not self.colony.free_slots():
                poorest = min(self.colony.organelles, key=lambda o: o.energy)
                self.colony.remove(poorest)
            self._seed_from_merged(self.config.energy.initial)

    def _log_decision(self, decision: gate.GateDecision) -> None:
        outcome = "passed" if decision.passed else "failed"
        self.gating[f"assimilation/{outcome}"] += 1
        for stage in decision.stopped_at:
            self.gating[f"gate/{stage}"] += 1
        record = {"attempt": self.attempt, **decision.record()}
        self.snapshots = ([*self.snapshots, record])[
            -self.config.assimilation_tuning.gating_snapshot_limit :
        ]
        self._write("assimilation", record)

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self) -> dict:
        """Holdout accuracy of host, best organelle, merged adapter and routed colony."""
        tokens = self.config.grid.max_new_tokens
        if self.host_scores is None:
            self.host_scores = slot_scores(self.host, None, [-1], self.holdout, tokens)[0]
        routes = self.routes()
        report, self.last_scores = evaluate(
            self.host,
            self.population,
            self.colony,
            self.holdout,
            tokens,
            self.host_scores,
            routes,
        )
        report["generation"] = self.generation
        report["attempt"] = self.attempt
        self.last_eval = report
        self._write("evaluations", report)
        return report

    def routes(self) -> dict:
        """The routed colony's table: the slot that serves each cell (evaluation.route_table)."""
        settings = self.config.evaluation
        return route_table(
            self.host,
            self.population,
            self.colony,
            self.route_examples,
            self.config.grid.max_new_tokens,
            settings.route_z,
            settings.route_candidates,
        )

    def _probe_scores(self, slot: int) -> np.ndarray:
        """A slot's score on each reserved probe prompt; the merged adapter's are kept until it
        changes (the probe is then generated for the trial merge alone)."""
        if slot == MERGED_SLOT and self._merged_probe[0] == self.merges:
            return self._merged_probe[1]
        scores = np.array(
            slot_scores(
                self.host, self.population, [slot], self.probe, self.config.grid.max_new_tokens
            )[0]
        )
        if slot == MERGED_SLOT:
            self._merged_probe = (self.merges, scores)
        return scores

    # -- helpers -------------------------------------------------------------------------------

    def _snapshot(self, slot: int, name: str, origin: str, niche, edges: dict) -> None:
        """Put a slot's adapter into the gene pool (replacing an older gene of that name), scored
        per cell by its mean paired edge over the merged adapter."""
        gene = gene_from_slot(
            self.population, slot, self.genes.rank, name, origin, self.generation, niche
        )
        gene.scores = {cell: total / n for cell, (total, _, n) in edges.items() if n}
        self.genes.add(gene)

    def _niche_cells(self, niche: str | None) -> list:
        """The grid's cells in a niche."""
        return [cell for cell in self.grid.cells if in_niche(niche, cell)]

    def _open_niche(self) -> str | None:
        """The niche a new organelle takes: among the niches with the fewest organelles, the one
        whose cells the market prices highest (the colony fails them most)."""
        kind = self.config.specialisation.niche
        if kind == "none":
            return None
        niches = (
            list(dict.fromkeys(f for f, _ in self.grid.cells))
            if kind == "family"
            else [cell_key(c) for c in self.grid.cells]
        )
        occupied = Counter(o.niche for o in self.colony.organelles)
        fewest = min(occupied[n] for n in niches)
        open_niches = [n for n in niches if occupied[n] == fewest]
        price = {
            n: np.mean([self.market.prices[c] for c in self._niche_cells(n)]) for n in open_niches
        }
        return max(open_niches, key=lambda n: (price[n], -niches.index(n)))

    def _route(self, organelle: Organelle, chosen: list):
        """The cell an organelle serves this generation: Thompson sampling on its own successes
        over the bandit's chosen cells in its niche, or, when none is chosen there, the niche's
        cell the bandit ranks highest."""
        allowed = [c for c in chosen if in_niche(organelle.niche, c)]
        if not allowed:
            scores = self.bandit.scores()
            niche = self._niche_cells(organelle.niche)
            allowed = [max(niche, key=lambda c: scores[self.bandit.cells.index(c)])]
        successes, failures = organelle.success_counts(allowed)
        pick = thompson_route(
            np.array([successes], dtype=float), np.array([failures], dtype=float), self.rng
        )[0]
        return allowed[pick]

    def _train_example(self, cell, role: Role) -> Example:
        """A train-split example of the cell reserved for `role` (roles.py)."""
        while True:
            example = self.grid.sample(self.rng, cell=cell, split="train")
            if self._role(example) is role:
                return example

    def _role(self, example: Example) -> Role:
        split = self.config.train_split
        return role_of(example, split.probe_fraction, split.forage_fraction)

    def _route_examples(self) -> dict:
        """Per cell, distinct forage-role prompts for the routing check (fixed for the run)."""
        rng = np.random.default_rng([self.config.seed, 31337])
        wanted = self.config.evaluation.route_prompts
        out = {}
        for cell in self.grid.cells:
            seen: dict[str, Example] = {}
            for _ in range(20 * wanted):
                example = self.grid.sample(rng, cell=cell, split="train")
                if self._role(example) is Role.forage:
                    seen.setdefault(example.prompt, example)
                    if len(seen) == wanted:
                        break
            out[cell] = list(seen.values())
        return out

    def _probe_examples(self) -> list[Example]:
        rng = np.random.default_rng([self.config.seed, 104729])
        size = self.config.assimilation_tuning.holdout_probe_size
        probe = []
        while len(probe) < size:
            cell = self.grid.cells[len(probe) % len(self.grid.cells)]
            example = self.grid.sample(rng, cell=cell, split="train")
            if self._role(example) is Role.probe:
                probe.append(example)
        return probe

    def _copy_mutated(self, src: int, dst: int) -> None:
        self.population.clone(src, dst)
        for rule in self.rules:
            rule.adopt(dst, None if src == MERGED_SLOT else src)
        sigma = self.config.reproduction.mutation_sigma
        if sigma > 0:
            generator = torch.Generator(device=self.population.device)
            generator.manual_seed(int(self.rng.integers(0, 2**62)))
            self.population.mutate([dst], sigma, generator)

    def _seed_from_merged(self, energy: float) -> Organelle | None:
        """A new organelle of a new species, grown from the colony's merged adapter."""
        organelle = self.colony.spawn(None, energy, self.generation, self._open_niche())
        if organelle is not None:
            self._copy_mutated(MERGED_SLOT, organelle.slot)
        return organelle

    def _write(self, stream: str, record: dict) -> None:
        self.run.stream(stream).append(record)

    def _summary(self, active, episodes, learned, born, died, decision, evaluated) -> dict:
        organelles = self.colony.organelles
        energies = self.colony.energies()
        rois = [e["roi"] for e in episodes]
        summary = {
            "generation": self.generation,
            "attempt": self.attempt,
            "population/size": len(organelles),
            "population/active": len(active),
            "population/born": born,
            "population/died": died,
            "population/effective": effective_population(energies),
            "population/species_shares": {
                str(k): v for k, v in species_shares([o.species for o in organelles]).items()
            },
            "energy/mean": float(energies.mean()) if len(energies) else 0.0,
            "energy/total": float(energies.sum()),
            "energy/gini": gini(energies),
            "roi/mean": float(np.mean(rois)) if rois else 0.0,
            "roi/median": float(np.median(rois)) if rois else 0.0,
            "roi/std": float(np.std(rois)) if rois else 0.0,
            "reward/treatment": float(np.mean([e["reward"] for e in episodes]))
            if episodes
            else 0.0,
            "reward/control": float(np.mean([e["control_reward"] for e in episodes]))
            if episodes
            else 0.0,
            "learning/fitness": float(np.mean(learned)) if learned else 0.0,
            "market/prices": {cell_key(c): p for c, p in self.market.prices.items()},
            "assimilation/merges": self.merges,
            "assimilation/gating": dict(self.gating),
            "assimilation/last": decision.record() if decision else None,
        }
        if evaluated:
            for variant in ("host", "best", "merged", "routed"):
                summary[f"accuracy/{variant}"] = evaluated[variant]["overall"]
        return summary
