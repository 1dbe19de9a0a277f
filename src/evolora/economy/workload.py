"""The workload the economy steers: PEFT LoRA fine-tuning of a host on tasks or a dataset.

Training examples come from the train split, drawn by the current data mix over *groups* (the
families of a multi-family grid or dataset, else the difficulties of a one-family grid). The
validation and test (task accuracy) examples come from the holdout split, the credit probe from
the train split; all three are fixed at the start from the run's seed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evolora.economy.config import WorkloadConfig
from evolora.errors import EvoloraError
from evolora.tasks import Example, TaskGrid, load_dataset, split_of

IGNORE = -100


class TaskSource:
    """Train / validation / probe / test examples of a task grid or a user dataset, by group."""

    def __init__(self, spec: str, seed: int) -> None:
        self.seed = seed
        self.grid: TaskGrid | None = None
        if spec.endswith(".jsonl") or spec.startswith("hf:") or Path(spec).is_file():
            self._pools = self._dataset_pools(spec)
            self.groups = sorted(self._pools["train"])
        else:
            self.grid = TaskGrid.named(spec)
            if len(self.grid.families) > 1:
                self.groups = list(self.grid.families)
            else:
                self.groups = [f"d{d}" for d in self.grid.difficulties]

    @staticmethod
    def _dataset_pools(spec: str) -> dict[str, dict[str, list[Example]]]:
        pools: dict[str, dict[str, list[Example]]] = {"train": {}, "holdout": {}}
        for example in load_dataset(spec):
            pools[split_of(example)].setdefault(example.family, []).append(example)
        if not pools["train"] or not pools["holdout"]:
            raise EvoloraError(
                f"Dataset '{spec}' needs examples in both the train and the holdout split (split "
                "by a hash of each example); give it more examples."
            )
        return pools

    def group_of(self, example: Example) -> str:
        """The mix group an example belongs to."""
        if self.grid is not None and len(self.grid.families) == 1:
            return f"d{example.difficulty}"
        return example.family

    def sample(
        self, rng: np.random.Generator, n: int, split: str, mix: list[float] | None = None
    ) -> list[Example]:
        """`n` examples of `split`, each group drawn with probability `mix` (uniform if None)."""
        weights = np.full(len(self.groups), 1.0) if mix is None else np.asarray(mix, dtype=float)
        picks = rng.choice(len(self.groups), size=n, p=weights / weights.sum())
        out = []
        for index in picks:
            group = self.groups[int(index)]
            if self.grid is None:
                pool = self._pools[split].get(group) or self._pools["train"][group]
                out.append(pool[int(rng.integers(len(pool)))])
            elif len(self.grid.families) > 1:
                difficulty = self.grid.difficulties[int(rng.integers(len(self.grid.difficulties)))]
                out.append(self.grid.sample(rng, (group, difficulty), split))
            else:
                out.append(self.grid.sample(rng, (self.grid.families[0], int(group[1:])), split))
        return out

    def train_batch(self, step: int, n: int, mix: list[float]) -> list[Example]:
        """The training examples of micro-batch `step`: a function of (seed, step, mix) only."""
        return self.sample(np.random.default_rng([self.seed, 7, step]), n, "train", mix)

    def fixed(self, purpose: int, n: int, split: str) -> list[Example]:
        """`n` fixed examples (uniform mix) for one purpose (1 val, 2 probe, 3 test)."""
        return self.sample(np.random.default_rng([self.seed, purpose]), n, split)

    def test_examples(self, per_cell: int) -> list[Example]:
        """Holdout examples for task accuracy: `per_cell` per grid cell; for a dataset, the first
        `per_cell` x 5 holdout examples of each group (as many as a family's five cells)."""
        rng = np.random.default_rng([self.seed, 3])
        if self.grid is None:
            pools = self._pools["holdout"]
            return [ex for g in sorted(pools) for ex in pools[g][: per_cell * 5]]
        return [
            self.grid.sample(rng, cell, "holdout")
            for cell in self.grid.cells
            for _ in range(per_cell)
        ]


@dataclass
class Batch:
    """Tokenised examples: left-padded ids, mask, positions and answer-only labels. (B, T)"""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor


def encode(tokenizer, examples: list[Example], device: torch.device) -> Batch:
    """Prompt + answer + newline per example; only the answer tokens carry a label."""
    ids, labels = [], []
    for ex in examples:
        head = tokenizer(ex.prompt)["input_ids"]
        tail = tokenizer(ex.answer + "\n", add_special_tokens=False)["input_ids"]
        ids.append(head + tail)
        labels.append([IGNORE] * len(head) + tail)
    width = max(len(x) for x in ids)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=device)
    label_ids = torch.tensor([[IGNORE] * (width - len(x)) + x for x in labels], device=device)
    starts = torch.tensor([width - len(x) for x in ids], device=device)
    mask = (torch.arange(width, device=device)[None, :] >= starts[:, None]).long()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return Batch(input_ids, mask, positions, label_ids)


def token_stats(model, batch: Batch) -> tuple[torch.Tensor, int, int]:
    """(summed answer-token cross-entropy, answer tokens, tokens predicted right by argmax)."""
    logits = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
    ).logits[:, :-1]
    targets = batch.labels[:, 1:]
    keep = targets != IGNORE
    losses = torch.nn.functional.cross_entropy(
        logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum"
    )
    correct = int(((logits.argmax(-1) == targets) & keep).sum())
    return losses, int(keep.sum()), correct


def mean_loss(model, batch: Batch) -> torch.Tensor:
    """Mean answer-token cross-entropy of a batch (differentiable)."""
    total, count, _ = token_stats(model, batch)
    return total / max(1, count)


@torch.no_grad()
def evaluate_loss(model, batches: list[Batch]) -> dict[str, float]:
    """Validation loss, perplexity and token accuracy over fixed batches (model left in eval)."""
    was_training = model.training
    model.eval()
    total, count, correct = 0.0, 0, 0
    for batch in batches:
        loss, n, right = token_stats(model, batch)
        total, count, correct = total + float(loss), count + n, correct + right
    model.train(was_training)
    loss = total / max(1, count)
    return {
        "val_loss": loss,
        "perplexity": math.exp(min(loss, 50.0)),
        "token_accuracy": correct / max(1, count),
    }


def task_accuracy(model, tokenizer, examples: list[Example], max_new_tokens: int) -> float:
    """Exact-answer accuracy of greedy completions from a merged copy of the adapted model."""
    from evolora.hosts.evaluate import evaluate
    from evolora.hosts.host import Host

    merged = copy.deepcopy(model).merge_and_unload()
    result = evaluate(Host(merged, tokenizer, name="economy"), examples, max_new_tokens)
    return float(result["accuracy"])


def chunks(tokenizer, examples: list[Example], device: torch.device, size: int = 32) -> list[Batch]:
    """Fixed examples tokenised in batches of `size`."""
    return [
        encode(tokenizer, examples[i : i + size], device) for i in range(0, len(examples), size)
    ]


def peft_model(model, config: WorkloadConfig, seed: int):
    """A PEFT LoRA model (rank `max_rank`, dropout module always present) wrapping `model`."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    lora = LoraConfig(
        r=config.max_rank,
        lora_alpha=config.alpha,
        lora_dropout=0.1,  # any p > 0 makes PEFT build a Dropout module the dropout agent steers
        target_modules=list(config.targets),
    )
    model = get_peft_model(model, lora)
    model.train()
    return model
