"""Batched generation and log-likelihood for a causal LM: left padding, positions, KV cache.

Rows are left-padded so every row's last token sits in the final column; positions count only real
tokens, so a padded row computes exactly what it would compute alone.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import partial

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase
from transformers.cache_utils import DynamicLayer


def context_window(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The longest sequence (in tokens) the model can attend over, or None when it has no limit."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is None and 0 < getattr(tokenizer, "model_max_length", 0) < 1_000_000:
        limit = tokenizer.model_max_length
    return int(limit) if limit else None


def encode(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], special: bool
) -> list[list[int]]:
    """Token ids of each text (with the tokenizer's special tokens when `special`)."""
    if not texts:
        return []
    ids = tokenizer(list(texts), add_special_tokens=special)["input_ids"]
    if special:
        fallback = tokenizer.bos_token_id
        fallback = tokenizer.pad_token_id if fallback is None else fallback
        ids = [row if row else [fallback] for row in ids]
    return [list(row) for row in ids]


def truncate_left(seqs: list[list[int]], limit: int, what: str) -> list[list[int]]:
    """Keep the last `limit` tokens of each sequence, warning once when anything was cut."""
    cut = sum(len(s) > limit for s in seqs)
    if cut:
        warnings.warn(
            f"{cut} {what} longer than {limit} tokens were truncated from the left to fit the "
            "host's context window.",
            stacklevel=3,
        )
    return [s[-limit:] if len(s) > limit else s for s in seqs]


def left_pad(
    seqs: list[list[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded input ids, attention mask and position ids, each [batch, longest]."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
        mask[row, width - len(seq) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


class StopChecker:
    """Per-row stop-string detection that decodes only a short tail, and only when it can matter.

    A token can complete a stop string only if its own text shares a character with one (or is a
    partial byte); that test is memoised per token id, so most steps decode nothing.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop: Sequence[str]):
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.chars = set("".join(self.stop))
        self.window = 4 * max((len(s) for s in self.stop), default=0) + 4
        self._relevant: dict[int, bool] = {}

    def _may_matter(self, token: int) -> bool:
        hit = self._relevant.get(token)
        if hit is None:
            text = self.tokenizer.decode([token], clean_up_tokenization_spaces=False)
            hit = not text or "\ufffd" in text or bool(self.chars.intersection(text))
            self._relevant[token] = hit
        return hit

    def stopped(self, rows: list[int], generated: list[list[int]]) -> list[int]:
        """The subset of `rows` whose generated text now contains a stop string."""
        if not self.stop:
            return []
        check = [r for r in rows if self._may_matter(generated[r][-1])]
        if not check:
            return []
        tails = self.tokenizer.batch_decode(
            [generated[r][-self.window :] for r in check],
            skip_special_tokens=True,
            clean_up_tokenization_spaces=False,
        )
        return [
            r for r, text in zip(check, tails, strict=True) if any(s in text for s in self.stop)
        ]

    def cut(self, text: str) -> str:
        """`text` up to (not including) its first stop string."""
        end = min((i for i in (text.find(s) for s in self.stop) if i >= 0), default=len(text))
        return text[:end]


class _PreallocatedLayer(DynamicLayer):
    """A cache layer whose keys and values live in a buffer sized for the whole generation: a
    decode step writes one column instead of copying the cache (`DynamicLayer` concatenates,
    which made the copies grow with the square of the length and dominate generation time)."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        if end > self.capacity:  # beyond the planned length: fall back to concatenation
            return super().update(key_states, value_states, *args, **kwargs)
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            batch, heads, _, dim = key_states.shape
            self._keys = key_states.new_empty(batch, heads, self.capacity, dim)
            self._values = value_states.new_empty(
                batch, heads, self.capacity, value_states.shape[-1]
            )
        self._keys[:, :, self.length : end] = key_states
        self._values[:, :, self.length : end] = value_states
        self.length = end
        self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the rows `indices` (finished rows leave the batch)."""
        if not self.is_initialized or not hasattr(self, "_keys"):
            return super().batch_select_indices(indices)
        self._keys = self._keys.index_select(0, indices)
        self._values = self._values.index_select(0, indices)
        self.keys = self._keys[:, :, : self.length]
        self.values = self._values[:, :, : self.length]


def preallocated_cache(capacity: int) -> DynamicCache:
    """A `DynamicCache` whose layers hold up to `capacity` positions without copying."""
    cache = DynamicCache()
    cache.layer_class_to_replicate = partial(_PreallocatedLayer, capacity)
    return cache


def _next_tokens(
    logits: torch.Tensor, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Greedy (temperature 0) or sampled next token per row from last-position logits [B, V]."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def cache_keyword(model: PreTrainedModel) -> str:
    """The forward argument that takes the KV cache: `cache` in current transformers (which
    deprecates the older `past_key_values`, still the only name in older releases)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


# step(ids, attention mask, positions) -> next-token scores [B, V] at each row's last position.
DecodeStep = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# shrink(kept batch positions) -> None: the step drops every other row from its state.
Shrink = Callable[[torch.Tensor], None]


class NearTies:
    """Per row, the last greedy step whose top-2 score margin was below `margin`: the steps a
    lower-precision decode may have decided differently from fp32 (see hosts/verified.py).

    `last[r]` is the index, in row r's new tokens, of the token that step chose (its length when
    the step chose the end of sequence), or -1 when no step was that close."""

    def __init__(self, margin: float, rows: int) -> None:
        self.margin = margin
        self.last = [-1] * rows

    def observe(self, scores: torch.Tensor, positions: list[int], rows: list[int],
                generated: list[list[int]]) -> None:
        """Record the near ties among batch `positions` (rows `rows`) of one step's scores."""
        top = scores[positions].topk(2, dim=-1).values
        close = ((top[:, 0] - top[:, 1]) < self.margin).tolist()
        for row, tie in zip(rows, close, strict=True):
            if tie:
                self.last[row] = len(generated[row])


@torch.no_grad()
def decode(
    step: DecodeStep,
    seqs: list[list[int]],
    pad_id: int,
    device: torch.device,
    eos_ids: set[int],
    checker: StopChecker,
    max_new_tokens: int,
    temperature: float,
    generator: torch.Generator | None,
    use_cache: bool,
    context: int | None = None,
    prefix: list[list[int]] | None = None,
    shrink: Shrink | None = None,
    ties: NearTies | None = None,
) -> list[list[int]]:
    """New token ids per row (eos and everything after a stop excluded) of any next-token `step`:
    the decode loop's bookkeeping (left padding, positions, mask, stops, finished rows).

    With `use_cache` the step sees only the new token (it keeps its own KV cache), else the whole
    sequence. A row stops after `max_new_tokens` new tokens, or once its prompt plus new tokens
    fill the `context` window. `prefix[r]`: new tokens row r already has (they count as new).
    With `shrink` (cached decoding only), rows leave the batch once half of it has finished.
    `ties` records each row's near-tie steps.
    """
    generated = [list(p) for p in prefix] if prefix else [[] for _ in seqs]
    ids, mask, positions = left_pad([s + g for s, g in zip(seqs, generated, strict=True)],
                                    pad_id, device)
    batch, width = ids.shape
    steps = max_new_tokens - min(map(len, generated))
    live = list(range(batch))  # the row at each batch position
    active = list(range(batch))  # batch positions still generating
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    # The mask of every step is a prefix of one mask allocated up front (the new columns are 1).
    full_mask = torch.cat([mask, mask.new_ones(batch, max(steps, 0))], dim=1)
    step_ids, step_pos, last_pos = ids, positions, positions[:, -1:]
    for index in range(steps):
        scores = step(step_ids, full_mask[:, : width + index], step_pos)
        if ties is not None:
            ties.observe(scores, active, [live[j] for j in active], generated)
        token = _next_tokens(scores, temperature, generator)
        new = token.tolist()
        finished = set()
        for j in active:
            row = live[j]
            if new[j] in eos_ids:
                finished.add(j)
                continue
            generated[row].append(new[j])
            if len(generated[row]) >= max_new_tokens or (
                    context is not None and len(seqs[row]) + len(generated[row]) >= context):
                finished.add(j)
        going = [j for j in active if j not in finished]
        stopped = set(checker.stopped([live[j] for j in going], generated))
        finished.update(j for j in going if live[j] in stopped)
        active = [j for j in active if j not in finished]
        if not active:
            break
        if finished:
            done[list(finished)] = True
        token = token.masked_fill(done, pad_id)
        last_pos = last_pos + 1
        if shrink is not None and use_cache and 2 * len(active) <= len(live):
            keep = torch.tensor(active, device=device)
            shrink(keep)
            live = [live[j] for j in active]
            token, last_pos = token[keep], last_pos[keep]
            full_mask, done = full_mask[keep], done[keep]
            active = list(range(len(active)))
        if use_cache:
            step_ids, step_pos = token[:, None], last_pos
        else:
            ids = torch.cat([ids, token[:, None]], dim=1)
            positions = torch.cat([positions, last_pos], dim=1)
            step_ids, step_pos = ids, positions
    return generated


# route(rows) -> the adapter routing of these rows of the batch (a context manager).
RouteFor = Callable[[list[int]], AbstractContextManager[None]]


def route_rows(route: RouteFor | None, rows: list[int]) -> RouteFor | None:
    """The routing of a batch made of `rows`: its position i is row rows[i] of `route`."""
    if route is None:
        return None
    return lambda positions: route([rows[i] for i in positions])


class _Routes:
    """The routing context of the rows still in a decode batch, re-entered when rows leave."""

    def __init__(self, route: RouteFor | None, rows: list[int]) -> None:
        self.route, self.rows = route, rows
        self.current: AbstractContextManager[None] | None = None

    def __enter__(self) -> _Routes:
        self._open()
        return self

    def __exit__(self, *exc) -> None:
        self._close()

    def keep(self, positions: list[int]) -> None:
        """Route only the rows at these batch positions from now on."""
        self._close()
        self.rows = [self.rows[j] for j in positions]
        self._open()

    def _open(self) -> None:
        if self.route is not None:
            self.current = self.route(self.rows)
            self.current.__enter__()

    def _close(self) -> None:
        if self.current is not None:
            current, self.current = self.current, None
            current.__exit__(None, None, None)


@torch.no_grad()
def generate_batch(
    model: PreTrainedModel,
    seqs: list[list[int]],
    pad_id: int,
    eos_ids: set[int],
    checker: StopChecker,
    max_new_tokens: int,
    temperature: float,
    generator: torch.Generator | None,
    route: RouteFor | None,
    use_cache: bool,
    context: int | None = None,
    prefix: list[list[int]] | None = None,
    ties: NearTies | None = None,
) -> list[list[int]]:
    """New token ids per row (eos and everything after a stop excluded) for one micro-batch.

    `route(rows)` gives the adapter routing of those rows (positions in `seqs`); finished rows
    leave the batch (its KV cache and routing) as it decodes. A row also stops once its prompt
    plus new tokens fill the `context` window. `prefix` and `ties`: see `decode`.
    """
    longest = max(len(s) + len(p) for s, p in zip(seqs, prefix or [[]] * len(seqs), strict=True))
    cache = preallocated_cache(longest + max_new_tokens) if use_cache else None
    keyword = cache_keyword(model)

    with _Routes(route, list(range(len(seqs)))) as routes:

        def step(ids, mask, positions):
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                        use_cache=use_cache, logits_to_keep=1, **{keyword: cache})
            return out.logits[:, -1, :]

        def shrink(keep: torch.Tensor) -> None:
            cache.batch_select_indices(keep)
            routes.keep(keep.tolist())

        return decode(step, seqs, pad_id, model.device, eos_ids, checker, max_new_tokens,
                      temperature, generator, use_cache, context, prefix,
                      shrink if use_cache else None, ties)


@torch.no_grad()
def loglik_batch(
    model: PreTrainedModel,
    prompts: list[list[int]],
    targets: list[list[int]],
    pad_id: int,
    route: AbstractContextManager[None] | None,
) -> torch.Tensor:
    """Sum of log-probs of each row's target tokens given its prompt, float32 [batch] on CPU."""
    return target_logprobs(model, prompts, targets, pad_id, route).cpu()


def target_logprobs(
    model: PreTrainedModel,
    prompts: list[list[int]],
    targets: list[list[int]],
    pad_id: int,
    route: AbstractContextManager[None] | None,
) -> torch.Tensor:
    """Sum of log-probs of each row's target tokens given its prompt, float32 [batch] on the
    model's device, differentiable when gradients are enabled."""
    seqs = [p + t for p, t in zip(prompts, targets, strict=True)]
    ids, mask, positions = left_pad(seqs, pad_id, model.device)
    # Left padding puts every target at the end: only the last (longest target + 1) logits matter.
    keep = min(max(len(t) for t in targets) + 1, ids.shape[1])
    with route if route is not None else nullcontext():
        logits = model(
            input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep
        ).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, keep-1, V)
    scored = ids[:, ids.shape[1] - keep + 1 :]
    token_logp = logp.gather(-1, scored[..., None]).squeeze(-1)
    lengths = torch.tensor([len(t) for t in targets], device=ids.device)
    columns = torch.arange(keep - 1, device=ids.device)
    is_target = columns[None, :] >= (keep - 1 - lengths)[:, None]
    return (token_logp * is_target).sum(-1).float()
