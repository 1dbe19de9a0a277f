"""What each training prompt is for: learning, foraging, or assimilation's holdout probe.

The train split is cut again by a stable hash of the prompt, so the three uses never share a
prompt: learning rules train only on `learn` prompts; foraging episodes, whose paired edges are the
evidence that routing and assimilation rest on, use only `forage` prompts; the assimilation probe
uses only `probe` prompts. (The evaluation holdout is the task layer's own holdout split.)
"""

from __future__ import annotations

import hashlib
from enum import Enum

from evolora.tasks import Example


class Role(str, Enum):
    """The use a training prompt is reserved for."""

    learn = "learn"
    forage = "forage"
    probe = "probe"


def role_of(example: Example, probe_fraction: float, forage_fraction: float) -> Role:
    """The role of a train-split example, from its prompt alone (the same in every run)."""
    digest = hashlib.sha256(b"role:" + example.prompt.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < probe_fraction:
        return Role.probe
    if u < probe_fraction + forage_fraction:
        return Role.forage
    return Role.learn
