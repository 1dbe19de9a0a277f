"""`forward_with_explanation`: the braider's greedy decision for one task, each head's choice with
its probability, and the inputs that drove it, found by occlusion: how much the log-probability of
the chosen option falls when one input (a task feature, the family, one model's profile) is zeroed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from evolora.braid.braider import HEADS, Decision, MetaBraider
from evolora.braid.features import TASK_FEATURES, BraidInputs
from evolora.braid.fusion import strategy_names


@dataclass(frozen=True)
class HeadExplanation:
    """One head's choice, its probability and the top drivers (name, log-prob drop if removed)."""

    head: str
    choice: str
    probability: float
    drivers: tuple[tuple[str, float], ...]

    def sentence(self) -> str:
        """One line a user reads."""
        why = ", ".join(f"{name} ({drop:+.2f})" for name, drop in self.drivers)
        return f"{self.head}: {self.choice} (p={self.probability:.2f}); driven by {why}"


def _variants(inputs: BraidInputs, members: list[str]) -> tuple[BraidInputs, list[str]]:
    """Row 0 the task itself, then one row per occluded input, and the inputs' names."""
    names, rows = ["(none)"], [inputs]
    for j, feature in enumerate(TASK_FEATURES):
        x = inputs.take([0])
        x.task = x.task.clone()
        x.task[0, j] = 0.0
        rows.append(x)
        names.append(feature)
    x = inputs.take([0])
    x.family = torch.full_like(x.family, -1)
    rows.append(x)
    names.append("family")
    for m, member in enumerate(members):
        x = inputs.take([0])
        x.models = x.models.clone()
        x.models[0, m] = 0.0
        rows.append(x)
        names.append(f"profile of {member}")
    stacked = BraidInputs(*(torch.cat([getattr(r, f) for r in rows]) for f in (
        "task", "family", "models", "budget", "latency")))
    return stacked, names


@torch.no_grad()
def forward_with_explanation(braider: MetaBraider, inputs: BraidInputs, top: int = 3
                             ) -> tuple[Decision, list[HeadExplanation]]:
    """The greedy decision for the single task in `inputs` and one explanation per head."""
    decision = braider.decide(inputs.take([0]), greedy=True)
    variants, names = _variants(inputs.take([0]), braider.members)
    repeat = lambda t: t.expand(len(names), *t.shape[1:])  # noqa: E731
    forced = Decision(*(repeat(getattr(decision, f)) for f in HEADS), logp={}, entropy={},
                      value=decision.value, lead=repeat(decision.lead))
    scored = braider.decide(variants, forced=forced)
    logits = braider.logits(inputs.take([0]))
    out = []
    for head in HEADS:
        drops = scored.logp[head][0] - scored.logp[head][1:]
        order = drops.abs().argsort(descending=True)[:top].tolist()
        drivers = tuple((names[1 + i], float(drops[i])) for i in order)
        choice, prob = _choice(braider, head, decision, logits)
        out.append(HeadExplanation(head, choice, prob, drivers))
    return decision, out


def _choice(braider: MetaBraider, head: str, decision: Decision, logits) -> tuple[str, float]:
    if head == "models":
        on = decision.models[0]
        lead = int(decision.lead[0])
        joins = torch.sigmoid(logits["join"][0, lead])
        is_lead = torch.arange(len(on), device=on.device) == lead
        team = torch.where(on, joins, 1 - joins).masked_fill(is_lead, 1.0).prod()
        p = torch.softmax(logits["models"][0], -1)[lead] * team
        others = [braider.members[i] for i in range(len(on)) if on[i] and i != lead]
        return f"lead {braider.members[lead]}" + (f" + [{', '.join(others)}]" if others else
                                                  " alone"), float(p)
    if head == "layers":
        on = decision.layers[0]
        probs = torch.sigmoid(logits[head][0])
        chosen = [str(i) for i in range(len(on)) if on[i]]
        p = float(torch.where(on, probs, 1 - probs).prod())
        return "[" + ", ".join(chosen) + "]", p
    index = int(getattr(decision, head)[0])
    p = float(torch.softmax(logits[head][0], -1)[index])
    values = {"strategy": strategy_names(), "temperature": braider.config.temperatures,
              "top_k": braider.config.top_ks}[head]
    return str(values[index]), p
