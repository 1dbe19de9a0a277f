"""Generation and log-likelihood: cache vs no cache, batched vs one-by-one, stops, truncation."""

from __future__ import annotations

import pytest
import torch

from evolora.errors import EvoloraError

PROMPTS = [
    "math: 3+4*2=",
    "To be",
    "sort asc: pear apple fig =",
    "logic: T and F =",
    "Whether 'tis nobler in the mind",
]


def test_cached_greedy_equals_uncached_token_for_token(tiny_host):
    cached = tiny_host.generate(PROMPTS, max_new_tokens=12, stop=(), batch_size=8)
    uncached = tiny_host.generate(PROMPTS, max_new_tokens=12, stop=(), use_cache=False)
    assert cached == uncached
    assert all(
        len(tiny_host.tokenizer(c, add_special_tokens=False)["input_ids"]) > 0 for c in cached
    )


def test_batched_equals_one_by_one(tiny_host):
    batched = tiny_host.generate(PROMPTS, max_new_tokens=10, stop=(), batch_size=8)
    alone = [tiny_host.generate([p], max_new_tokens=10, stop=())[0] for p in PROMPTS]
    assert batched == alone
    # Micro-batches of 2 (mixed lengths, reordered internally) return rows in prompt order too.
    assert tiny_host.generate(PROMPTS, max_new_tokens=10, stop=(), batch_size=2) == alone


def test_sampling_is_reproducible_from_seed(tiny_host):
    first = tiny_host.generate(PROMPTS, max_new_tokens=8, temperature=1.5, stop=(), seed=3)
    again = tiny_host.generate(PROMPTS, max_new_tokens=8, temperature=1.5, stop=(), seed=3)
    other = tiny_host.generate(PROMPTS, max_new_tokens=8, temperature=1.5, stop=(), seed=4)
    assert first == again
    assert first != other


def test_output_is_cut_before_the_first_stop_string(tiny_host):
    free = tiny_host.generate(PROMPTS, max_new_tokens=12, stop=())
    for prompt, text in zip(PROMPTS, free, strict=True):
        if len(text) < 3:
            continue
        stop = text[1:3]  # a stop string that this greedy continuation surely produces
        cut = tiny_host.generate([prompt], max_new_tokens=12, stop=(stop,))[0]
        assert cut == text[: text.find(stop)]


def test_long_prompt_is_truncated_from_the_left_with_a_warning(tiny_host):
    long_prompt = "To be, or not to be, that is the question. " * 40  # far beyond 64 tokens
    tail = tiny_host.tokenizer.decode(
        tiny_host.tokenizer(long_prompt, add_special_tokens=False)["input_ids"][-60:]
    )
    with pytest.warns(UserWarning, match="truncated from the left"):
        out = tiny_host.generate([long_prompt], max_new_tokens=4, stop=())
    assert len(out) == 1
    with pytest.warns(UserWarning, match="truncated from the left"):
        scores = tiny_host.loglik([long_prompt], [" question"])
    assert torch.isfinite(scores).all()
    # Truncation keeps the end of the prompt: the same text as prompting with the tail alone
    # (whose <bos> is itself cut, as the tail fills the window).
    with pytest.warns(UserWarning, match="truncated from the left"):
        assert out == tiny_host.generate([tail], max_new_tokens=4, stop=())


def test_zero_new_tokens_and_empty_batch(tiny_host):
    assert tiny_host.generate(PROMPTS[:2], max_new_tokens=0) == ["", ""]
    assert tiny_host.generate([], max_new_tokens=4) == []


def test_loglik_matches_a_manual_forward(tiny_host):
    tok, model = tiny_host.tokenizer, tiny_host.model
    targets = ["11", " or not", "apple fig pear", "false", " to suffer"]
    scores = tiny_host.loglik(PROMPTS, targets, batch_size=2)
    assert scores.dtype == torch.float32 and scores.device.type == "cpu" and scores.shape == (5,)
    for prompt, target, got in zip(PROMPTS, targets, scores, strict=True):
        head = tok(prompt)["input_ids"]
        tail = tok(target, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([head + tail], device=tiny_host.device)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
        expected = sum(logp[len(head) - 1 + j, t].item() for j, t in enumerate(tail))
        assert got.item() == pytest.approx(expected, abs=1e-4)


def test_loglik_rejects_mismatched_lengths(tiny_host):
    with pytest.raises(EvoloraError, match="2 prompts but 1 targets"):
        tiny_host.loglik(PROMPTS[:2], ["x"])


def test_rows_stop_at_the_end_of_the_context_window(tiny_host):
    tok = tiny_host.tokenizer
    ids = tok("To be, or not to be, that is the question. " * 10, add_special_tokens=False)
    prompt = tok.decode(ids["input_ids"][:40])  # fits: no truncation, 23 tokens of room
    room = tiny_host.context - len(tok(prompt)["input_ids"])
    assert 0 < room < 30
    long_and_short = tiny_host.generate([prompt, "To be"], max_new_tokens=30, stop=())
    assert long_and_short[0] == tiny_host.generate([prompt], max_new_tokens=room, stop=())[0]
    assert long_and_short[1] == tiny_host.generate(["To be"], max_new_tokens=30, stop=())[0]


def test_decode_runs_any_step_function_with_the_hosts_bookkeeping(tiny_host):
    from evolora.hosts.generation import StopChecker, decode

    tok = tiny_host.tokenizer
    script = tok("abc\nxyz", add_special_tokens=False)["input_ids"]
    seen = []

    def step(ids, mask, positions):  # emits `script` token by token, whatever the input
        seen.append((ids.shape, mask.shape, positions[:, -1].tolist()))
        scores = torch.zeros(ids.shape[0], len(tok))
        scores[:, script[len(seen) - 1]] = 1.0
        return scores

    seqs = [[5, 6, 7], [8]]
    out = decode(step, seqs, tok.pad_token_id, torch.device("cpu"), set(),
                 StopChecker(tok, ("\n",)), 20, 0.0, None, use_cache=True)
    assert tok.decode(out[0]).startswith("abc\n") and out[0] == out[1]
    assert len(seen) == len(out[0]) < len(script)  # stopped at the newline
    assert seen[0] == ((2, 3), (2, 3), [2, 0]) and seen[1][0] == (2, 1)  # then one new token
    assert seen[1][2] == [3, 1]  # positions count only real tokens
