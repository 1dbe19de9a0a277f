"""A session-wide built-in host for fast real runs."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def host():
    """The built-in host (each Job deep-copies its model before PEFT wraps it)."""
    from evolora.hosts import load_host

    return load_host("builtin")
