"""Host language models: load one (`load_host`), generate and score with it (`Host`).

`AdapterRouter` is the hook an adapter population implements to join a host's forwards.
`Precision` / `resolve_precision` are the fp32-or-bf16 policy (precision.py); a Host records its
`precision` and runs forwards in it inside `host.autocast()`.
Heavy modules (torch, transformers) load only when `Host` or `load_host` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evolora.hosts.loading import load_host

if TYPE_CHECKING:
    from evolora.hosts.adapters import AdapterRouter
    from evolora.hosts.host import Host
    from evolora.hosts.precision import Precision, resolve_precision

__all__ = ["AdapterRouter", "Host", "Precision", "load_host", "resolve_precision"]


def __getattr__(name: str):
    if name == "Host":
        from evolora.hosts.host import Host

        return Host
    if name == "AdapterRouter":
        from evolora.hosts.adapters import AdapterRouter

        return AdapterRouter
    if name in ("Precision", "resolve_precision"):
        from evolora.hosts import precision

        return getattr(precision, name)
    raise AttributeError(f"module 'evolora.hosts' has no attribute {name!r}")
