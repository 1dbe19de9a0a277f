"""Deterministic train/holdout splits from a stable hash of the prompt."""

from __future__ import annotations

import hashlib
from typing import Any

from evolora.errors import EvoloraError

HOLDOUT_FRACTION = 0.2
SPLITS = ("train", "holdout")

_HASH_BYTES = 8
_HOLDOUT_BELOW = int(HOLDOUT_FRACTION * 2 ** (8 * _HASH_BYTES))


def split_of(example_or_prompt: Any) -> str:
    """Return "holdout" or "train" for an example (or a bare prompt string), from its prompt alone.

    The split is a pure function of the prompt text (blake2b, not Python's salted `hash`), so an
    example lands in the same split in every process, run and machine.
    """
    prompt = example_or_prompt if isinstance(example_or_prompt, str) else example_or_prompt.prompt
    digest = hashlib.blake2b(prompt.encode("utf-8", "surrogatepass"), digest_size=_HASH_BYTES)
    return "holdout" if int.from_bytes(digest.digest(), "big") < _HOLDOUT_BELOW else "train"


def check_split(split: str) -> str:
    """Return `split` if it names a split, else raise EvoloraError listing the valid names."""
    if split not in SPLITS:
        raise EvoloraError(f"Split {split!r} is unknown; valid splits are {', '.join(SPLITS)}.")
    return split
