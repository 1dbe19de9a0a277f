"""Generation and answer log-likelihood with a `BraidedLLM` (left padding, one KV cache per model).

Fusion is position-wise (it mixes the models' states at the same token), so a token's fused state
never changes once computed and every model's cache of keys and values stays valid: cached
generation computes exactly what recomputing the whole sequence computes.
"""

from __future__ import annotations

import torch

from evolora.braid.braided import BraidedLLM
from evolora.braid.plan import Plan
from evolora.hosts.generation import (
    DecodeStep,
    StopChecker,
    decode,
    encode,
    left_pad,
    preallocated_cache,
)


@torch.no_grad()
def generate(
    braid: BraidedLLM,
    prompts: list[str],
    plan: Plan,
    max_new_tokens: int = 48,
    temperature: float = 0.0,
    use_cache: bool = True,
    seed: int | None = None,
    batch_size: int = 64,
) -> list[str]:
    """Each prompt's completion up to its first newline (greedy at temperature 0), row i braided
    as plan row i."""
    tokenizer = braid.pool.tokenizer
    checker = StopChecker(tokenizer, ("\n",))
    generator = None
    if seed is not None and temperature > 0:
        generator = torch.Generator(device=braid.pool.device).manual_seed(seed)
    seqs = encode(tokenizer, prompts, special=True)
    outputs = [""] * len(prompts)
    for start in range(0, len(prompts), batch_size):
        rows = list(range(start, min(start + batch_size, len(prompts))))
        part = [seqs[r] for r in rows]
        step = _step(braid, plan.take(rows), max(map(len, part)) + max_new_tokens, use_cache)
        new = decode(step, part, tokenizer.pad_token_id, braid.pool.device,
                     braid.pool.hosts[0].eos_ids, checker, max_new_tokens, temperature,
                     generator, use_cache)
        texts = tokenizer.batch_decode(new, skip_special_tokens=True,
                                       clean_up_tokenization_spaces=False)
        for r, text in zip(rows, texts, strict=True):
            outputs[r] = checker.cut(text)
    return outputs


def _step(braid: BraidedLLM, plan: Plan, capacity: int, use_cache: bool) -> DecodeStep:
    """The braid's next-token log-probs for `decode`, with one KV cache per model when cached."""
    caches = [preallocated_cache(capacity) for _ in braid.stacks] if use_cache else None
    return lambda ids, mask, positions: braid(ids, mask, positions, plan, caches)[:, -1]


def answer_logprobs(braid: BraidedLLM, prompts: list[str], targets: list[str],
                    plan: Plan) -> torch.Tensor:
    """Mean log-probability per target token of each target after its prompt, (B,) on the pool's
    device, differentiable through the fusion banks."""
    tokenizer = braid.pool.tokenizer
    heads = encode(tokenizer, prompts, special=True)
    tails = encode(tokenizer, targets, special=False)
    seqs = [h + t for h, t in zip(heads, tails, strict=True)]
    ids, mask, positions = left_pad(seqs, tokenizer.pad_token_id, braid.pool.device)
    logp = braid(ids, mask, positions, plan)[:, :-1]  # (B, T-1, V): predicts tokens 1..T-1
    token_logp = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)
    lengths = torch.tensor([len(t) for t in tails], device=ids.device)
    columns = torch.arange(ids.shape[1] - 1, device=ids.device)
    is_target = columns[None, :] >= (ids.shape[1] - 1 - lengths)[:, None]
    return (token_logp * is_target).sum(-1) / lengths.clamp(min=1)


def greedy_correct(braid: BraidedLLM, prompts: list[str], answers: list[str],
                   plan: Plan) -> torch.Tensor:
    """1.0 where greedy decoding would produce exactly the answer's tokens and then a newline,
    else 0.0, (B,) on CPU: one teacher-forced forward instead of token-by-token generation."""
    return greedy_matches(braid, prompts, [a + "\n" for a in answers], plan)


@torch.no_grad()
def greedy_matches(braid: BraidedLLM, prompts: list[str], targets: list[str], plan: Plan,
                   batch_size: int = 64) -> torch.Tensor:
    """1.0 where every token of the target is the braid's argmax after the prompt and the
    target's earlier tokens, else 0.0, (B,) on CPU."""
    out = torch.zeros(len(prompts))
    for start in range(0, len(prompts), batch_size):
        rows = list(range(start, min(start + batch_size, len(prompts))))
        out[rows] = exact_match(*teacher_forced(braid, [prompts[r] for r in rows],
                                                [targets[r] for r in rows], plan.take(rows)))
    return out


def teacher_forced(braid: BraidedLLM, prompts: list[str], targets: list[str],
                   plan: Plan) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The braid's next-token log-probs along prompt + target (B, T, V), the tokens that come
    next (B, T) and where those are the target's (B, T) bool."""
    tokenizer = braid.pool.tokenizer
    heads = encode(tokenizer, prompts, special=True)
    tails = encode(tokenizer, targets, special=False)
    ids, mask, positions = left_pad([h + t for h, t in zip(heads, tails, strict=True)],
                                    tokenizer.pad_token_id, braid.pool.device)
    logprobs = braid(ids, mask, positions, plan)[:, :-1]
    lengths = torch.tensor([len(t) for t in tails], device=ids.device)
    columns = torch.arange(ids.shape[1] - 1, device=ids.device)
    return logprobs, ids[:, 1:], columns[None, :] >= (ids.shape[1] - 1 - lengths)[:, None]


def exact_match(logprobs: torch.Tensor, following: torch.Tensor,
                is_target: torch.Tensor) -> torch.Tensor:
    """1.0 where every target token is the argmax of `logprobs` (teacher-forced greedy exact
    match), else 0.0, (B,) on CPU."""
    return ((logprobs.argmax(-1) == following) | ~is_target).all(-1).float().cpu()
