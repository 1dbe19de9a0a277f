"""Verified greedy decoding: decode in bf16, and re-decide in fp32 the steps bf16 may have flipped.

A bf16 forward's scores differ from fp32's by a small error, so bf16 can only pick another greedy
token than fp32 at a step whose top-2 margin is below that error. The draft is decoded in bf16
while `NearTies` records each row's last step with a margin below `margin`; the rows that have
one are checked by a single teacher-forced fp32 forward over their prompt and draft (up to that
step). Where fp32's argmax differs from the draft at some step, the row keeps the draft before
it plus fp32's token, and decodes on from there in another round (bf16 again, verified again);
every round fixes at least one more token of a row, so it ends. Steps whose margin clears
`margin` are trusted to bf16: `margin` is set from the measured error (benchmarks/
precision_accuracy.py reports the share of completions identical to fp32's and the cost).

This is speculative decoding (Leviathan et al. 2023, arXiv:2211.17192) with the bf16 host as
its own draft model, verifying only the steps where the draft can be wrong.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from evolora.hosts.generation import (
    NearTies,
    RouteFor,
    StopChecker,
    generate_batch,
    left_pad,
    route_rows,
)
from evolora.hosts.precision import Exact


@dataclass
class VerifyStats:
    """What verification did, summed over calls."""

    rows: int = 0  # completions decoded
    checked: int = 0  # row-rounds with a near tie, checked in fp32
    checked_tokens: int = 0  # tokens the fp32 checks ran over
    corrected: int = 0  # row-rounds where fp32 chose another token than the draft
    rounds: int = 0  # decode rounds (1 per micro-batch when nothing was corrected)


@torch.no_grad()
def verified_generate(
    model: PreTrainedModel,
    seqs: list[list[int]],
    pad_id: int,
    eos_ids: set[int],
    checker: StopChecker,
    max_new_tokens: int,
    route: RouteFor | None,
    context: int | None,
    batch_size: int,
    margin: float,
    exact: Exact,
    stats: VerifyStats,
) -> list[list[int]]:
    """Greedy new token ids per row (as `generate_batch` at temperature 0) from a draft decoded
    in the running precision, in micro-batches of `batch_size`, checked where its margin is below
    `margin` by fp32 forwards run through `exact` (see the module docstring). `route(rows)`: the
    adapter routing of these rows of `seqs`. The rows a round corrects decode on together."""
    stats.rows += len(seqs)
    prefix: list[list[int]] = [[] for _ in seqs]
    final: list[list[int]] = [[] for _ in seqs]
    todo = list(range(len(seqs)))
    while todo:
        stats.rounds += 1
        last: dict[int, int] = {}  # row -> its last near-tie step at or after its prefix
        todo.sort(key=lambda r: -(len(seqs[r]) + len(prefix[r])))  # similar lengths batched
        for part in _chunks(todo, batch_size):
            ties = NearTies(margin, len(part))
            drafts = generate_batch(model, [seqs[r] for r in part], pad_id, eos_ids, checker,
                                    max_new_tokens, 0.0, None, route_rows(route, part), True,
                                    context,
                                    [prefix[r] for r in part], ties)
            for k, r in enumerate(part):
                final[r] = drafts[k]
                if ties.last[k] >= len(prefix[r]):
                    last[r] = ties.last[k]
        following = []
        for part in _chunks(sorted(last, key=lambda r: -(len(seqs[r]) + last[r])), batch_size):
            chosen = _fp32_choices(model, [seqs[r] for r in part], [final[r] for r in part],
                                   [len(prefix[r]) for r in part], [last[r] for r in part],
                                   pad_id, route, part, exact)
            stats.checked += len(part)
            stats.checked_tokens += sum(len(seqs[r]) + last[r] for r in part)
            for r, choice in zip(part, chosen, strict=True):
                fixed = _first_difference(final[r], choice, len(prefix[r]), eos_ids)
                if fixed is None:
                    continue
                stats.corrected += 1
                step, token = fixed
                if token in eos_ids:
                    final[r] = final[r][:step]
                    continue
                final[r] = [*final[r][:step], token]
                full = len(final[r]) >= max_new_tokens or (
                    context is not None and len(seqs[r]) + len(final[r]) >= context)
                if not full and not checker.stopped([0], [final[r]]):
                    prefix[r] = final[r]
                    following.append(r)
        todo = following
    return final


def _chunks(rows: list[int], size: int) -> list[list[int]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def _fp32_choices(model, prompts, drafts, first, last, pad_id, route, rows, exact: Exact):
    """fp32's greedy token at steps first[i]..last[i] of each draft, teacher-forced: one forward
    over every prompt + draft[:last[i]] (logits of the last last[i] - first[i] + 1 positions)."""
    seqs = [p + d[:end] for p, d, end in zip(prompts, drafts, last, strict=True)]
    counts = [end - start + 1 for start, end in zip(first, last, strict=True)]
    ids, mask, positions = left_pad(seqs, pad_id, next(model.parameters()).device)
    keep = max(counts)
    with exact.exact(), route(rows) if route else nullcontext():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                       logits_to_keep=keep).logits
    best = logits.argmax(-1).tolist()
    return [row[keep - count:] for row, count in zip(best, counts, strict=True)]


def _first_difference(draft: list[int], choices: list[int], first: int,
                      eos_ids: set[int]) -> tuple[int, int] | None:
    """(step, fp32's token) at the first step from `first` where fp32 chose differently from the
    draft (a step at len(draft) is where the draft ended with eos), or None."""
    for offset, token in enumerate(choices):
        step = first + offset
        drafted = draft[step] if step < len(draft) else None
        same = token in eos_ids if drafted is None else token == drafted
        if not same:
            return step, token
    return None

