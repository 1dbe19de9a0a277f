"""Verified greedy decoding and the shrinking decode batch: a wrong draft is corrected to the
exact model's greedy tokens, the margin decides what is checked, finished rows leave the batch
without changing any answer."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from torch import nn

from evolora.hosts import load_host
from evolora.hosts.generation import (
    NearTies,
    StopChecker,
    _PreallocatedLayer,
    encode,
    generate_batch,
)
from evolora.hosts.verified import VerifyStats, verified_generate

PROMPTS = ["math: 3+4*2=", "To be", "sort asc: pear apple fig =", "logic: T and F =",
           "Whether 'tis nobler in the mind", "seq: 2 4 6 8 =", "json: {", "To be, or not"]


class NoisyDraft:
    """The draft model is the model with noise on its output head; `exact()` is the model."""

    def __init__(self, model, scale: float) -> None:
        self.model = model
        self.clean = model.lm_head.weight
        noise = torch.randn(self.clean.shape, generator=torch.Generator().manual_seed(3))
        self.noisy = nn.Parameter(self.clean.detach() + scale * noise, requires_grad=False)

    @contextmanager
    def drafting(self):
        self.model.lm_head.weight = self.noisy
        try:
            yield self
        finally:
            self.model.lm_head.weight = self.clean

    @contextmanager
    def exact(self):
        self.model.lm_head.weight = self.clean
        try:
            yield
        finally:
            self.model.lm_head.weight = self.noisy


def _decode(host, margin: float, draft: NoisyDraft, stats: VerifyStats, stop=()):
    seqs = encode(host.tokenizer, PROMPTS, special=True)
    checker = StopChecker(host.tokenizer, stop)
    with draft.drafting():
        return verified_generate(host.model, seqs, host.tokenizer.pad_token_id, host.eos_ids,
                                 checker, 10, None, host.context, 3, margin, draft, stats)


def _greedy(host, stop=()):
    seqs = encode(host.tokenizer, PROMPTS, special=True)
    return generate_batch(host.model, seqs, host.tokenizer.pad_token_id, host.eos_ids,
                          StopChecker(host.tokenizer, stop), 10, 0.0, None, None, True,
                          host.context)


@pytest.mark.parametrize("stop", [(), ("e",)])
def test_a_wrong_draft_is_corrected_to_the_exact_greedy_tokens(llama_dir, stop):
    host = load_host(str(llama_dir))
    exact = _greedy(host, stop)
    draft = NoisyDraft(host.model, scale=0.3)
    with draft.drafting():
        drafted = _greedy(host, stop)
    assert drafted != exact  # the noise changes some greedy tokens
    stats = VerifyStats()
    assert _decode(host, float("inf"), draft, stats, stop) == exact
    assert stats.corrected > 0 and stats.rounds > 1 and stats.checked >= len(PROMPTS)


def test_steps_with_a_clear_margin_are_trusted_to_the_draft(llama_dir):
    host = load_host(str(llama_dir))
    draft = NoisyDraft(host.model, scale=0.3)
    with draft.drafting():
        drafted = _greedy(host)
    stats = VerifyStats()
    assert _decode(host, 0.0, draft, stats) == drafted  # no margin below 0: nothing checked
    assert (stats.checked, stats.corrected, stats.rounds) == (0, 0, 1)


def test_near_ties_record_the_last_close_step_per_row():
    ties = NearTies(0.5, rows=3)
    generated = [[7], [], [1, 2]]
    scores = torch.tensor([[2.0, 1.9, 0.0], [3.0, 1.0, 0.0], [0.0, 1.0, 0.8]])
    ties.observe(scores, [0, 1, 2], [0, 1, 2], generated)
    assert ties.last == [1, -1, 2]  # the index of the token each close step chose


def test_a_bf16_host_verifies_its_greedy_answers(llama_dir):
    fp32 = load_host(str(llama_dir), precision="fp32")
    bf16 = load_host(str(llama_dir), precision="bf16")
    bf16.verify_margin = float("inf")  # every step checked in fp32
    assert bf16.generate(PROMPTS, max_new_tokens=8) == fp32.generate(PROMPTS, max_new_tokens=8)
    assert bf16.verify_stats.rows == len(PROMPTS) and bf16.verify_stats.checked >= len(PROMPTS)
    bf16.verify_margin = 0.0  # not verified
    before = bf16.verify_stats.rows
    bf16.generate(PROMPTS, max_new_tokens=8)
    assert bf16.verify_stats.rows == before


def test_finished_rows_leave_the_batch_without_changing_any_answer(llama_dir, monkeypatch):
    host = load_host(str(llama_dir))
    selections = []
    original = _PreallocatedLayer.batch_select_indices

    def spy(layer, indices):
        selections.append(len(indices))
        return original(layer, indices)

    monkeypatch.setattr(_PreallocatedLayer, "batch_select_indices", spy)
    cached = host.generate(PROMPTS, max_new_tokens=16, stop=("e", "a"))
    assert selections  # rows did leave the batch
    uncached = host.generate(PROMPTS, max_new_tokens=16, stop=("e", "a"), use_cache=False)
    alone = [host.generate([p], max_new_tokens=16, stop=("e", "a"))[0] for p in PROMPTS]
    assert cached == uncached == alone
