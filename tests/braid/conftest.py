"""Session fixtures: one tiny tokenizer and a pool of three random Llamas (widths 32, 32, 48)."""

from __future__ import annotations

import pytest
from braid_models import tiny_pool, tiny_tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="session")
def pool(tokenizer):
    return tiny_pool(tokenizer)
