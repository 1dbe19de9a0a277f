"""Host language models: load one (`load_host`), generate and score with it (`Host`).

`AdapterRouter` is the hook an adapter population implements to join a host's forwards.
Heavy modules (torch, transformers) load only when `Host` or `load_host` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evolora.hosts.loading import load_host

if TYPE_CHECKING:
    from evolora.hosts.adapters import AdapterRouter
    from evolora.hosts.host import Host

__all__ = ["AdapterRouter", "Host", "load_host"]


def __getattr__(name: str):
    if name == "Host":
        from evolora.hosts.host import Host

        return Host
    if name == "AdapterRouter":
        from evolora.hosts.adapters import AdapterRouter

        return AdapterRouter
    raise AttributeError(f"module 'evolora.hosts' has no attribute {name!r}")
