"""The lr agent's opening: a bold-driver search for the edge of the useful learning rates.

The hypergradient (gradients.py) only looks one step ahead, and greedy one-step rules are known to
prefer step sizes below the best whole-run one (Wu et al. 2018, "Understanding Short-Horizon Bias
in Stochastic Meta-Optimization"); started at a timid lr it also climbs slowly. So a run opens
with a bold-driver search (Battiti 1989, "Accelerated backpropagation learning: two optimization
methods") judged on the validation log-loss (the credit probe, a few train examples, is too
small to rank learning rates over a couple of steps): every `every` optimizer steps, if it fell
below its last kept value the lr is multiplied by `factor` and the round is kept; a round
in which it did not fall holds the lr (a single noisy measurement does not stop the climb); after
`patience` such rounds in a row the run goes back to the last kept round (LoRA factors and their
optimizer moments), the lr lands on the last rate that made the validation loss fall (the rate of
that kept round; divided by `retreat`, 1 by default), and the search ends. A missed round whose
validation log-loss is within `tie` of the kept round's ties it: its training is kept (the retreat
goes back to it, or, for the retreat round itself, undoes nothing), since going back then throws
away optimizer steps the validation cannot tell from the kept ones. Landing there rather
than below it: a rate the validation just confirmed is the best-supported guess, and on short
budgets the best constant rate sits at or above it. It also ends when the lr reaches its upper
bound. The market, bursts and the hypergradient act once the search is over.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum


class Verdict(str, Enum):
    """What one search round decided."""

    START = "start"  # first measurement: nothing to compare with yet
    CLIMB = "climb"  # the validation loss fell: keep the weights, raise the lr
    HOLD = "hold"  # it did not fall: keep the lr and try again
    RETREAT = "retreat"  # it did not fall `patience` times in a row: go back, lower the lr, stop


@dataclass
class LrSearch:
    """Whether the search is still running, the validation log-loss of its last kept round, the
    lr that round trained with, the rounds since then in which it did not fall, and the lr it
    ended on."""

    active: bool = True
    last_loss: float | None = None
    rounds: int = 0
    misses: int = 0
    kept_lr: float | None = None
    landed: float | None = None  # the lr the search ended on

    def state(self) -> dict:
        """JSON-ready state."""
        return asdict(self)


def judge(search: LrSearch, loss: float, lr: float, patience: int) -> Verdict:
    """Compare the validation log-loss after a round trained at `lr` with the last kept round's;
    update the search and return the verdict (a non-finite loss counts as not falling)."""
    search.rounds += 1
    if search.last_loss is None or loss < search.last_loss:
        verdict = Verdict.START if search.last_loss is None else Verdict.CLIMB
        search.last_loss, search.misses, search.kept_lr = loss, 0, lr
        return verdict
    search.misses += 1
    if search.misses < patience:
        return Verdict.HOLD
    search.active = False
    return Verdict.RETREAT


def ties(search: LrSearch, loss: float, tie: float) -> bool:
    """Whether a missed round's validation log-loss `loss` is within `tie` of the last kept
    round's: its training is then kept (a later retreat goes back to it, not before it)."""
    return search.last_loss is not None and loss <= search.last_loss + tie and tie > 0


def next_lr(verdict: Verdict, lr: float, kept_lr: float, factor: float, retreat: float) -> float:
    """The lr after a verdict (unclipped): x factor on a start or a climb, unchanged on a hold,
    the last kept round's `kept_lr` / retreat on a retreat."""
    if verdict is Verdict.HOLD:
        return lr
    return kept_lr / retreat if verdict is Verdict.RETREAT else lr * factor
