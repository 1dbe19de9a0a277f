"""`Steering`: the economy joined to a live model and optimizer.

It owns the steered hyperparameters: before every optimizer step it writes lr and weight decay
into the optimizer's LoRA param groups (whatever a scheduler wrote there), clips the gradients at
the economy's clip value (recording the norm for gradient analysis) and masks the slots beyond the
active rank. It then measures the hypergradient signal of that step (gradients.py) and, when the
lr agent is in the economy, moves the lr for the next step: lr x exp(gain x signal / rms), the
gain being the knob the lr agent steers (clipped to lr_bounds), when the recent signals back the
step's direction (t statistic >= `knobs.lr_evidence`); otherwise the lr holds.

A run opens with the lr agent's bold-driver search (search.py): every `search.every` optimizer
steps the validation loss decides whether the lr doubles or holds; after `patience` rounds without
a fall the run goes back to the last kept round (LoRA factors and optimizer moments), or to the
last missed round whose validation tied it within `search.tie` (a tied retreat round is not undone
at all), the lr lands on the last rate that made the validation loss fall (divided by
`search.retreat`) and the search ends. Then the hypergradient, the market and the bursts take over.

After every `decide_every` optimizer steps it runs a decision round and applies every
proposal (dropout and rank to the model at once, lr / weight decay at the next step, clip,
accumulation and data mix as the loop reads them). Every `eval_every` micro-batches it validates:
anxiety, panic (lr back-off, rollback to the best weights, more exploration), the best weights,
and quantum bursts. A burst starts when validation or the decision rounds' probe loss went
`patience` measurements without a new best; `window` micro-batches later it is judged against
the same training without it (bursts.verdict): kept, undone (the window's training stays) or
restored to the pre-burst snapshot, whichever validates best. Used by the plain loop (loop.py)
and by `EconomyCallback` (callback.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from evolora.economy import market as mkt
from evolora.economy import neurochem
from evolora.economy.adapters import (
    load_lora_state,
    lora_parameters,
    lora_state,
    mask_gradients,
    set_dropout,
    set_rank,
)
from evolora.economy.bursts import BurstOutcome, burst, undo, verdict
from evolora.economy.config import EconomyConfig, Role
from evolora.economy.controller import Economy, Proposal
from evolora.economy.credit import performance
from evolora.economy.gradients import hypergradient_signal
from evolora.economy.knobs import clip_value
from evolora.economy.search import Verdict, judge, next_lr, ties
from evolora.economy.workload import TaskSource, chunks, evaluate_loss

Sink = Callable[[str, dict], None]
SEARCH = "lr_search"


def _no_sink(stream: str, record: dict) -> None:
    return None


class Steering:
    """The economy's hands on one model + optimizer (see the module docstring)."""

    def __init__(
        self,
        config: EconomyConfig,
        model,
        optimizer,
        source: TaskSource,
        tokenizer,
        sink: Sink | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.optimizer = optimizer
        self.sink = sink or _no_sink
        self.economy = Economy(config, source.groups)
        device = next(model.parameters()).device
        work = config.workload
        self.val = chunks(tokenizer, source.fixed(1, work.val_examples, "holdout"), device)
        self.probe = chunks(tokenizer, source.fixed(2, work.probe_examples, "train"), device)
        self.params = lora_parameters(model)
        self.generator = torch.Generator().manual_seed(config.seed + 13)
        self.opt_steps = 0
        self.best = lora_state(model)
        self.burst: dict | None = None
        self.reference: float | None = None  # the first validation loss: performance 0
        self.snapshot: dict[str, torch.Tensor] | None = None
        self.burst_maps: dict[str, torch.Tensor] | None = None  # what undoes the pending burst
        self.previous: torch.Tensor | None = None  # the LoRA factors before the last step
        # the LoRA factors and their optimizer moments at the last kept search round
        self.search_snapshot: tuple[dict, dict] | None = None
        set_rank(model, self.economy.knobs.rank, self.generator)
        set_dropout(model, self.economy.knobs.dropout)
        self.sync()

    @property
    def knobs(self):
        """The economy's current knobs."""
        return self.economy.knobs

    def owned_groups(self, optimizer=None) -> list[dict]:
        """The optimizer's param groups holding LoRA factors (the ones the economy steers)."""
        ids = {id(p) for p in self.params}
        groups = (optimizer or self.optimizer).param_groups
        return [g for g in groups if any(id(p) in ids for p in g["params"])]

    def sync(self, optimizer=None) -> None:
        """Write the economy's lr and weight decay into the LoRA param groups."""
        for group in self.owned_groups(optimizer):
            group["lr"] = self.knobs.lr
            group["weight_decay"] = self.knobs.weight_decay

    @torch.no_grad()
    def reset_moments(self) -> None:
        """Restart the optimizer state of the LoRA factors after their values were replaced:
        the first moment at zero, the second filled with its old mean per factor and the step
        count kept, so the next updates keep their usual size (an emptied Adam state makes the
        first update a sign step of the full lr on every coordinate). State without a second
        moment is forgotten."""
        for p in self.params:
            state = self.optimizer.state.get(p)
            if not state or "exp_avg_sq" not in state:
                self.optimizer.state.pop(p, None)
                continue
            state["exp_avg"].zero_()
            state["exp_avg_sq"].fill_(float(state["exp_avg_sq"].mean()))

    # -- around each optimizer step ------------------------------------------------------------

    def before_optimizer_step(self, optimizer=None) -> float:
        """Own the step: sync lr / wd, clip at the economy's value, mask inactive rank slots;
        return the gradient norm before clipping."""
        self.sync(optimizer)
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.knobs.grad_clip))
        mask_gradients(self.model, self.knobs.rank)
        self.economy.grads.observe(norm)
        self.follow_hypergradient()
        return norm

    @torch.no_grad()
    def follow_hypergradient(self) -> None:
        """Measure this step's hypergradient signal against the last update; the lr agent's gain
        turns it into the lr of the next step."""
        current = torch.cat([p.detach().flatten() for p in self.params])
        if self.previous is not None:
            gradient = torch.cat(
                [
                    torch.zeros_like(p).flatten() if p.grad is None else p.grad.flatten()
                    for p in self.params
                ]
            )
            signal = hypergradient_signal(gradient.float(), (current - self.previous).float())
            self.economy.grads.observe_hyper(signal)
            steers = Role.LR.value in self.economy.agents and not self.economy.search.active
            if steers and math.isfinite(signal):
                evidence = self.config.knobs.lr_evidence
                step = self.knobs.lr_gain * self.economy.grads.supported(signal, evidence)
                moved = self.knobs.lr * math.exp(step)
                self.knobs.lr = clip_value("lr", moved, self.config)[0]
        self.previous = current.clone()

    def after_optimizer_step(self, micro: int) -> list[Proposal]:
        """Count the step; while the lr search runs, every `search.every` steps a search round,
        after it every `decide_every` steps a decision round (returns their proposals)."""
        self.opt_steps += 1
        if self.economy.search.active:
            if self.opt_steps % self.config.search.every:
                return []
            return self.search_round(micro)
        if self.opt_steps % self.config.agents.decide_every:
            return []
        return self.decision_round(micro)

    def search_round(self, micro: int) -> list[Proposal]:
        """One round of the lr search: judge the validation loss, keep or undo the round, move
        the lr."""
        loss = math.log(evaluate_loss(self.model, self.val)["val_loss"])
        search = self.economy.search
        last = search.last_loss
        cfg = self.config.search
        verdict = judge(search, loss, self.knobs.lr, cfg.patience)
        tied = verdict in (Verdict.HOLD, Verdict.RETREAT) and ties(search, loss, cfg.tie)
        if verdict is Verdict.RETREAT and not tied:
            self.restore_search_snapshot()
        elif verdict is not Verdict.HOLD or tied:
            self.search_snapshot = (lora_state(self.model), self.moments())
        raw = next_lr(verdict, self.knobs.lr, search.kept_lr, cfg.factor, cfg.retreat)
        proposal = self.economy.apply(Role.LR, raw, micro, SEARCH, knob="lr")
        proposal.credit = None if last is None else last - loss
        if verdict in (Verdict.START, Verdict.CLIMB) and proposal.applied == proposal.before:
            search.active = False  # the lr sits at its upper bound and still improves
        if not search.active:
            self.search_snapshot = None
            search.landed = proposal.applied
        self.sink("proposals", {**proposal.record(), "verdict": verdict.value, "tied": tied})
        self.sync()
        return [proposal]

    def moments(self) -> dict[int, dict[str, torch.Tensor]]:
        """A copy of the optimizer state of each LoRA factor, keyed by its index."""
        state = self.optimizer.state
        return {
            i: {k: torch.as_tensor(v).detach().clone() for k, v in state[p].items()}
            for i, p in enumerate(self.params)
            if p in state
        }

    def restore_search_snapshot(self) -> None:
        """Put the LoRA factors and their optimizer moments back to the last kept search round."""
        weights, moments = self.search_snapshot
        load_lora_state(self.model, weights)
        for i, p in enumerate(self.params):
            self.optimizer.state.pop(p, None)
            if i in moments:
                self.optimizer.state[p] = {k: v.clone() for k, v in moments[i].items()}
        self.previous = None

    def decision_round(self, micro: int) -> list[Proposal]:
        """Settle the last round on the probe, decide, apply, and log everything."""
        probe = math.log(evaluate_loss(self.model, self.probe)["val_loss"])
        settled = self.economy.settle(probe, micro)
        for proposal in settled["proposals"]:
            self.sink("proposals", proposal.record())
        for trade in settled["trades"]:
            self.sink("trades", {"round": self.economy.round, "step": micro, **trade})
        proposals = self.economy.decide(micro)
        self.apply(proposals)
        self.sink("market", self.market_record(micro, probe, settled))
        if self.burst_due(self.economy.probe_stagnant):
            self.start_burst(micro, evaluate_loss(self.model, self.val)["val_loss"])
        return proposals

    def burst_due(self, stagnant: int) -> bool:
        """Bursts are on, none is waiting for its judgement, and `stagnant` (probe rounds or
        validations without a new best) reached the patience."""
        cfg = self.config.bursts
        searching = self.economy.search.active
        return cfg.enabled and not searching and self.burst is None and stagnant >= cfg.patience

    def apply(self, proposals: list[Proposal]) -> None:
        """Put applied proposals into the model / optimizer now (the loop reads the rest)."""
        roles = {p.agent for p in proposals}
        if Role.DROPOUT.value in roles:
            set_dropout(self.model, self.knobs.dropout)
        if Role.RANK.value in roles and set_rank(self.model, self.knobs.rank, self.generator):
            self.reset_moments()
            self.previous = None
        self.sync()

    def market_record(self, micro: int, probe: float, settled: dict) -> dict:
        """One row of market.jsonl: prices, tokens, pheromones, modulators, anxiety."""
        eco = self.economy
        return {
            "round": eco.round,
            "step": micro,
            "probe_logloss": probe,
            "credit": settled["credit"],
            "bankrupt": settled["bankrupt"],
            "price_level": eco.market.level,
            "prices": dict(eco.market.prices),
            "volatility": mkt.volatility(eco.market),
            "demand": eco.demand,
            "pressure": eco.demand / self.config.market.budget,
            "acted": len(eco.pending),
            "tokens": {n: a.tokens for n, a in eco.agents.items()},
            "risk": {n: a.risk for n, a in eco.agents.items()},
            "pheromones": {n: a.tau.tolist() for n, a in eco.agents.items()},
            "debt": sum(loan.owed for loan in eco.loans),
            "neuro": eco.neuro.state(),
            "anxiety": eco.anxiety.level,
            "exploration": eco.exploration(),
            "hypergradient": eco.grads.alignment,
            "knobs": eco.knobs.state(),
        }

    # -- validation, panic, bursts -------------------------------------------------------------

    def after_micro(self, micro: int) -> dict:
        """Validation, anxiety and bursts when due; returns the metrics it measured (or {})."""
        out: dict = {}
        if self.burst is not None and micro >= self.burst["micro"] + self.config.bursts.window:
            out.update(self.judge_burst(micro))
        if micro % self.config.workload.eval_every == 0:
            out.update(self.validate(micro))
        return out

    def validate(self, micro: int) -> dict:
        """Measure validation metrics and let anxiety, panic and bursts act on them."""
        metrics = evaluate_loss(self.model, self.val)
        if self.reference is None:
            self.reference = metrics["val_loss"]
        metrics["performance"] = performance(metrics["val_loss"], self.reference)
        event = self.economy.observe_validation(metrics["val_loss"], micro)
        if event["outcome"] == "improved":
            self.best = lora_state(self.model)
        if event["rollback"]:
            self.rollback(self.best)
            if self.burst is not None:  # the burst's weights are gone: nothing left to judge
                self.end_burst({"judged_at": micro, "kept": False, "outcome": "panic_rollback"})
        if event["proposal"] is not None:
            self.sink("proposals", event["proposal"].record())
            self.sync()
        metrics.update(
            anxiety=self.economy.anxiety.level, panic=event["panic"], rollback=event["rollback"]
        )
        if not event["rollback"] and self.burst_due(self.economy.anxiety.stagnant):
            metrics["burst"] = self.start_burst(micro, metrics["val_loss"])
        return metrics

    def rollback(self, weights: dict[str, torch.Tensor]) -> None:
        """Restore LoRA weights and forget their optimizer moments."""
        load_lora_state(self.model, weights)
        self.reset_moments()
        self.previous = None

    def start_burst(self, micro: int, val_loss: float) -> float:
        """Snapshot, perturb along top singular directions, and wait for the judgement."""
        self.snapshot = lora_state(self.model)
        scale = self.config.bursts.scale * neurochem.step_scale(self.economy.neuro)
        rank, top_k = self.knobs.rank, self.config.bursts.top_k
        change, self.burst_maps = burst(self.model, rank, top_k, scale, self.generator)
        self.previous = None
        self.burst = {"micro": micro, "reference": val_loss, "scale": scale, "change": change}
        self.economy.anxiety.stagnant = 0
        self.economy.probe_stagnant = 0
        return change

    def judge_burst(self, micro: int) -> dict:
        """Validate the burst as trained and the same weights with the burst undone; leave the
        best of them and the pre-burst snapshot in the model (bursts.verdict)."""
        trained = lora_state(self.model)
        val = evaluate_loss(self.model, self.val)["val_loss"]
        undo(self.model, self.burst_maps)
        undone = evaluate_loss(self.model, self.val)["val_loss"]
        outcome = verdict(val, undone, self.burst["reference"])
        if outcome is BurstOutcome.KEPT:
            load_lora_state(self.model, trained)
        elif outcome is BurstOutcome.RESTORED:
            self.rollback(self.snapshot)
        else:
            self.previous = None  # the factors moved off the last update's end point
        record = {"judged_at": micro, "val_loss": val, "undone_val_loss": undone}
        self.end_burst({**record, "kept": outcome is BurstOutcome.KEPT, "outcome": outcome.value})
        return {"burst_kept": outcome is BurstOutcome.KEPT, "burst_outcome": outcome.value}

    def end_burst(self, record: dict) -> None:
        """Log the pending burst with `record` and forget it."""
        self.sink("bursts", {**self.burst, **record})
        self.burst, self.snapshot, self.burst_maps = None, None, None

    def on_nan(self, micro: int) -> None:
        """A non-finite loss: roll back to the best weights and back the lr off."""
        self.rollback(self.best)
        if self.burst is not None:
            self.end_burst({"judged_at": micro, "kept": False, "outcome": "nan_rollback"})
        proposal = self.economy.apply(
            Role.LR, self.knobs.lr * self.config.anxiety.lr_backoff, micro, "nan_guard", knob="lr"
        )
        self.sink("proposals", proposal.record())
        self.sync()

    def flush(self) -> None:
        """Log the proposals still waiting for credit (the run ends before their settlement)."""
        for proposal in self.economy.pending:
            self.sink("proposals", proposal.record())
        self.economy.pending = []

    # -- persistence ---------------------------------------------------------------------------

    def state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """(JSON state, tensors) to continue exactly."""
        tensors = {f"lora.{k}": v for k, v in lora_state(self.model).items()}
        tensors.update({f"best.{k}": v for k, v in self.best.items()})
        if self.snapshot is not None:
            tensors.update({f"snap.{k}": v for k, v in self.snapshot.items()})
            tensors.update({f"burstmap.{k}": v for k, v in self.burst_maps.items()})
        tensors["rng.burst"] = self.generator.get_state()
        if self.previous is not None:
            tensors["previous"] = self.previous
        if self.search_snapshot is not None:
            weights, moments = self.search_snapshot
            tensors.update({f"search.{k}": v for k, v in weights.items()})
            for i, entry in moments.items():
                tensors.update({f"searchopt.{i}.{k}": v for k, v in entry.items()})
        state = {
            "economy": self.economy.state(),
            "opt_steps": self.opt_steps,
            "burst": self.burst,
            "reference": self.reference,
        }
        return state, tensors

    def load_state(self, state: dict, tensors: dict[str, torch.Tensor]) -> None:
        """Inverse of `state`."""

        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

        self.economy.load_state(state["economy"])
        self.opt_steps = state["opt_steps"]
        self.burst = state["burst"]
        self.reference = state["reference"]
        load_lora_state(self.model, part("lora."))
        self.best = part("best.")
        self.snapshot = part("snap.") or None
        self.burst_maps = part("burstmap.") if self.snapshot is not None else None
        self.previous = tensors.get("previous")
        self.search_snapshot = None
        if part("search."):
            moments: dict[int, dict[str, torch.Tensor]] = {}
            for name, value in part("searchopt.").items():
                index, key = name.split(".", 1)
                moments.setdefault(int(index), {})[key] = value
            self.search_snapshot = (part("search."), moments)
        self.generator.set_state(tensors["rng.burst"])
        set_dropout(self.model, self.knobs.dropout)
        self.sync()
