"""`Host`: a frozen causal language model and its tokenizer, with batched generation and scoring."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from evolora.errors import EvoloraError
from evolora.hosts.adapters import AdapterRouter, adapter_id_tensor
from evolora.hosts.generation import (
    StopChecker,
    context_window,
    encode,
    generate_batch,
    loglik_batch,
    route_rows,
    truncate_left,
)
from evolora.hosts.precision import (
    VERIFY_MARGIN,
    Exact,
    Precision,
    resolve_precision,
    run_in,
    with_generation_probe,
)
from evolora.hosts.verified import VerifyStats, verified_generate

DEFAULT_BATCH = 64


class Host:
    """A frozen (eval, no grad) causal LM plus tokenizer (left padding, with a pad token).

    `precision` is a resolved `Precision` or "auto" / "fp32" / "bf16" (resolved here, see
    precision.py); generation and scoring run inside `autocast()` (the precision's context).
    Greedy generation in bf16 is verified (hosts/verified.py): steps whose top-2 margin is below
    `verify_margin` are re-decided in fp32 (0: not verified); `verify_stats` sums what that did.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        name: str,
        precision: Precision | str = "fp32",
    ) -> None:
        model.eval()
        model.requires_grad_(False)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token_id is None:
                raise EvoloraError(
                    f"The tokenizer of host '{name}' has neither a pad nor an eos token; "
                    "add a pad_token to its tokenizer_config.json."
                )
            tokenizer.pad_token = tokenizer.eos_token
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.device: torch.device = model.device
        if not isinstance(precision, Precision):
            precision = with_generation_probe(resolve_precision(precision, self.device), model)
        self.precision: Precision = precision
        self.verify_margin = VERIFY_MARGIN
        self.verify_stats = VerifyStats()
        self.context = context_window(model, tokenizer)
        self.eos_ids = self._eos_ids()
        self._checkers: dict[tuple[str, ...], StopChecker] = {}

    def _eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        config = getattr(self.model, "generation_config", None)
        extra = getattr(config, "eos_token_id", None) if config is not None else None
        ids.update(extra if isinstance(extra, list) else [extra])
        return {i for i in ids if i is not None}

    @contextmanager
    def autocast(self, generation: bool = False) -> Iterator[Exact]:
        """Run the forwards inside in this host's precision (`generation`: its decoding precision):
        under bf16, the frozen linear layers compute in bf16 (with bf16 copies of their fp32
        weights, made once for the block) and everything between them, the output head included,
        stays fp32; under fp32, unchanged. Gradients still reach adapters, whose factors stay
        fp32. Yields the handle whose `exact()` runs a forward in fp32 inside the block."""
        bf16 = self.precision.generation_bf16 if generation else self.precision.bf16
        with run_in(self.model, "bf16" if bf16 else "fp32") as exact:
            yield exact

    @property
    def n_params(self) -> int:
        """Number of parameters of the host model."""
        return sum(p.numel() for p in self.model.parameters())

    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        stop: tuple[str, ...] = ("\n",),
        adapters: AdapterRouter | None = None,
        adapter_ids: Sequence[int] | torch.Tensor | None = None,
        batch_size: int | None = None,
        seed: int | None = None,
        use_cache: bool = True,
    ) -> list[str]:
        """The new text of each prompt, cut before the first stop string (greedy at temperature 0).

        With `adapters`, prompt i runs through adapter `adapter_ids[i]` (-1: the bare host).
        `use_cache=False` recomputes the whole sequence every step (same tokens, slower).
        """
        if max_new_tokens < 0 or temperature < 0:
            raise EvoloraError(
                f"max_new_tokens ({max_new_tokens}) and temperature ({temperature}) must be >= 0."
            )
        ids = adapter_id_tensor(adapters, adapter_ids, len(prompts), self.device)
        seqs = encode(self.tokenizer, prompts, special=True)
        if self.context is not None:
            # Room kept for new tokens when a prompt is cut; a row also stops at the window's end.
            reserve = max(1, min(max_new_tokens, self.context // 4))
            seqs = truncate_left(seqs, self.context - reserve, "prompts")
        if not prompts or max_new_tokens == 0:
            return [""] * len(prompts)
        generator = None
        if seed is not None and temperature > 0:
            generator = torch.Generator(device=self.device).manual_seed(seed)
        checker = self._checkers.setdefault(tuple(stop), StopChecker(self.tokenizer, stop))
        # Longest prompts first so each micro-batch holds similar lengths (little padding).
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        size = batch_size or DEFAULT_BATCH
        verify = (use_cache and temperature == 0 and self.verify_margin > 0
                  and self.precision.generation_bf16)
        route = (lambda rows: adapters.route(ids[rows])) if adapters is not None else None
        new: list[list[int]] = [[] for _ in seqs]
        with self.autocast(generation=True) as exact:  # once per call: bf16 copies made once
            if verify:
                new = verified_generate(self.model, seqs, self.tokenizer.pad_token_id,
                                        self.eos_ids, checker, max_new_tokens, route,
                                        self.context, size, self.verify_margin, exact,
                                        self.verify_stats)
            else:
                for start in range(0, len(order), size):
                    rows = order[start : start + size]
                    part = generate_batch(self.model, [seqs[i] for i in rows],
                                          self.tokenizer.pad_token_id, self.eos_ids, checker,
                                          max_new_tokens, temperature, generator,
                                          route_rows(route, rows), use_cache, self.context)
                    for i, tokens in zip(rows, part, strict=True):
                        new[i] = tokens
        texts = self.tokenizer.batch_decode(
            new, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return [checker.cut(text) for text in texts]

    def loglik(
        self,
        prompts: list[str],
        targets: list[str],
        adapters: AdapterRouter | None = None,
        adapter_ids: Sequence[int] | torch.Tensor | None = None,
        batch_size: int | None = None,
    ) -> torch.Tensor:
        """Sum of log-probabilities of each target's tokens given its prompt, float32 [n] on CPU."""
        if len(prompts) != len(targets):
            raise EvoloraError(
                f"loglik got {len(prompts)} prompts but {len(targets)} targets; give one target "
                "per prompt."
            )
        ids = adapter_id_tensor(adapters, adapter_ids, len(prompts), self.device)
        heads = encode(self.tokenizer, prompts, special=True)
        tails = encode(self.tokenizer, targets, special=False)
        if self.context is not None:
            joined = truncate_left(
                [h + t for h, t in zip(heads, tails, strict=True)], self.context, "prompts"
            )
            # A target token needs at least one token before it to be predicted.
            tails = [
                t[len(t) - min(len(t), len(j) - 1) :] for t, j in zip(tails, joined, strict=True)
            ]
            heads = [j[: len(j) - len(t)] for j, t in zip(joined, tails, strict=True)]
        order = sorted(range(len(heads)), key=lambda i: -(len(heads[i]) + len(tails[i])))
        size = batch_size or DEFAULT_BATCH
        result = torch.zeros(len(prompts), dtype=torch.float32)
        with self.autocast():  # once per call: bf16 weight copies are made once
            for start in range(0, len(order), size):
                rows = order[start : start + size]
                route = adapters.route(ids[rows]) if adapters is not None else None
                result[rows] = loglik_batch(
                    self.model,
                    [heads[i] for i in rows],
                    [tails[i] for i in rows],
                    self.tokenizer.pad_token_id,
                    route,
                )
        return result

    def __repr__(self) -> str:
        arch = type(self.model).__name__
        return (f"Host({self.name!r}, {arch}, {self.n_params:,} params, {self.device}, "
                f"{self.precision.label})")
