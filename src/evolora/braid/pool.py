"""The model pool: causal LMs sharing one tokenizer, each with a profile the braider reads.

A pool folder holds `pool.json` (one profile per member) and `adapters.safetensors` (the LoRA
factors of members of kind "adapter", keys `<member>/<layer>.A|B`). Member kinds:

- `host`: a host spec (`builtin`, a local HF folder, a cached "org/name");
- `adapter`: a host spec plus a LoRA adapter, merged exactly into a copy of the host's weights
  (W + alpha/rank * B A), so it runs at the host's speed;
- `hf`: another local causal LM (it must share the tokenizer).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from evolora.braid.stack import DecoderStack
from evolora.errors import EvoloraError
from evolora.hosts import Host, load_host
from evolora.telemetry.atomic import atomic_write_text

KINDS = ("host", "adapter", "hf")
POOL_FILE = "pool.json"
ADAPTER_FILE = "adapters.safetensors"


@dataclass(frozen=True)
class ModelProfile:
    """What the braider knows of a member: size, shape, domain, skill per family, cost per token."""

    name: str
    kind: str
    source: str
    domain: str = "general"
    params: int = 0
    layers: int = 0
    hidden: int = 0
    cost_per_token: float = 0.0  # forward FLOPs per token, ~2 x parameters
    skill: dict[str, float] = field(default_factory=dict)  # holdout mean score per family
    rank: int = 0
    alpha: float = 0.0

    def describe(self) -> dict:
        """The profile as a JSON-ready dict."""
        return asdict(self)


class ModelPool:
    """Loaded members (`hosts`, one `Host` each) with their profiles and one shared tokenizer."""

    def __init__(self, hosts: list[Host], profiles: list[ModelProfile]) -> None:
        if not hosts:
            raise EvoloraError("The model pool is empty; a braid needs at least one model.")
        if len(hosts) != len(profiles):
            raise EvoloraError(f"The pool has {len(hosts)} models but {len(profiles)} profiles.")
        names = [p.name for p in profiles]
        if len(set(names)) != len(names):
            raise EvoloraError(f"Pool member names must be unique, got {names}.")
        check_shared_tokenizer(hosts, names)
        self.hosts = hosts
        self.profiles = profiles
        self.tokenizer = hosts[0].tokenizer
        self.device = hosts[0].device
        self._stacks: list[DecoderStack] | None = None

    @property
    def names(self) -> list[str]:
        """Member names, in pool order."""
        return [p.name for p in self.profiles]

    @property
    def size(self) -> int:
        """Number of members."""
        return len(self.profiles)

    @property
    def stacks(self) -> list[DecoderStack]:
        """Layer-by-layer views of the members (checked on first use)."""
        if self._stacks is None:
            self._stacks = [DecoderStack(h.model, h.name) for h in self.hosts]
        return self._stacks

    @property
    def depth(self) -> int:
        """Layers every member has: the fusion layers a braid may use are 0 .. depth-1."""
        return min(p.layers for p in self.profiles)

    def index(self, name: str) -> int:
        """Position of member `name` in the pool (one sentence naming the members if unknown)."""
        if name not in self.names:
            raise EvoloraError(f"No model {name!r} in the pool; its models are {self.names}.")
        return self.names.index(name)

    def save(self, folder: str | Path, adapters: dict[str, torch.Tensor],
             made_with: dict | None = None) -> Path:
        """Write pool.json and adapters.safetensors (`adapters`: flat `<member>/<layer>.A|B`;
        `made_with`: the config that made the pool, recorded for cache checks)."""
        return save_pool_files(folder, self.profiles, adapters, made_with=made_with)


def save_pool_files(folder: str | Path, profiles: list[ModelProfile],
                    adapters: dict[str, torch.Tensor], **records) -> Path:
    """Write a pool folder: pool.json (the `profiles`, `made_with`: the config of the `pool make`
    that made it, None unless given, and any other `records`, e.g. `skill_with`) and
    adapters.safetensors (`adapters`: flat `<member>/<layer>.A|B`)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in adapters.items()}
    save_file(tensors, str(folder / ADAPTER_FILE))
    data = {"version": 1, "members": [p.describe() for p in profiles], "made_with": None,
            **records}
    atomic_write_text(folder / POOL_FILE, json.dumps(data, indent=1) + "\n")
    return folder


def check_new_pool_folder(out: str | Path) -> None:
    """Stop with one sentence when `out` already holds a pool (one is never overwritten)."""
    if (Path(out) / POOL_FILE).exists():
        raise EvoloraError(f"'{out}' already holds a pool; choose another output folder.")


def check_shared_tokenizer(hosts: list[Host], names: list[str]) -> None:
    """Stop with one sentence when two members' tokenizers map text to different ids."""
    first = hosts[0].tokenizer.get_vocab()
    for host, name in zip(hosts[1:], names[1:], strict=True):
        if host.tokenizer.get_vocab() != first:
            raise EvoloraError(
                f"Models '{names[0]}' and '{name}' use different tokenizers; a braid fuses models "
                "token by token, so every member must share one tokenizer."
            )


def profile_of(host: Host, name: str, kind: str, source: str, **extra) -> ModelProfile:
    """A profile with the host's measured size and shape (skill filled in by `measure_skill`)."""
    params = host.n_params
    return ModelProfile(
        name=name, kind=kind, source=source, params=params,
        layers=int(host.model.config.num_hidden_layers),
        hidden=int(host.model.config.hidden_size), cost_per_token=2.0 * params, **extra,
    )


def with_adapter(host: Host, factors: dict[str, tuple[torch.Tensor, torch.Tensor]],
                 scale: float, name: str) -> Host:
    """A new frozen Host: a copy of `host` whose Linear weights carry W + scale * B @ A."""
    model = copy.deepcopy(host.model)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for layer, (a, b) in factors.items():
            if layer not in modules:
                raise EvoloraError(f"Adapter of '{name}' names layer {layer!r}, absent from host.")
            weight = modules[layer].weight
            weight += (scale * b.float() @ a.float()).to(weight.device, weight.dtype)
    return Host(model, host.tokenizer, name=name)


def load_pool(folder: str | Path, device: str | None = None) -> ModelPool:
    """Load a pool folder written by `ModelPool.save` (`evolora braid pool make`)."""
    folder = Path(folder)
    profiles = read_profiles(folder)
    tensors = load_adapter_tensors(folder)
    bases: dict[str, Host] = {}
    hosts = []
    for p in profiles:
        if p.kind not in KINDS:
            raise EvoloraError(f"Pool member '{p.name}' has kind {p.kind!r}; use one of {KINDS}.")
        if p.source not in bases:
            bases[p.source] = load_host(p.source, device=device)
        base = bases[p.source]
        if p.kind != "adapter":
            hosts.append(base if p.kind == "host" else load_host(p.source, device=device))
            continue
        factors = adapter_factors(tensors, p.name)
        if not factors or p.rank < 1:
            raise EvoloraError(f"Pool member '{p.name}' has no adapter tensors in {ADAPTER_FILE}.")
        hosts.append(with_adapter(base, factors, p.alpha / p.rank, p.name))
    return ModelPool(hosts, profiles)


def read_profiles(folder: str | Path) -> list[ModelProfile]:
    """The member profiles of a pool folder's pool.json (nothing is loaded)."""
    path = Path(folder) / POOL_FILE
    if not path.is_file():
        raise EvoloraError(
            f"'{folder}' is not a model pool: it has no {POOL_FILE} (make one with "
            "`evolora braid pool make`)."
        )
    try:
        members = json.loads(path.read_text(encoding="utf-8"))["members"]
        return [ModelProfile(**m) for m in members]
    except (ValueError, KeyError, TypeError) as problem:
        raise EvoloraError(f"'{path}' is not a valid pool file ({problem}).") from None


def combine_pools(base: str | Path, other: str | Path, suffix: str, out: str | Path) -> Path:
    """Write at `out` a pool of `base`'s members plus `other`'s adapter members, each renamed
    `<name><suffix>` (e.g. specialists made with another seed beside the default ones; `other`'s
    host and hf members are left out). No make config is recorded: `ensure_pool` uses it as is."""
    check_new_pool_folder(out)
    profiles = read_profiles(base)
    tensors = load_adapter_tensors(base)
    added = load_adapter_tensors(other)
    for p in (p for p in read_profiles(other) if p.kind == "adapter"):
        name = p.name + suffix
        if name in {q.name for q in profiles}:
            raise EvoloraError(f"Member '{name}' of '{other}' would repeat a name of '{base}'; "
                               "give a --suffix that makes its names new.")
        profiles.append(ModelProfile(**{**p.describe(), "name": name}))
        tensors.update({f"{name}/{k}.{f}": t for k, (a, b) in adapter_factors(added, p.name).items()
                        for f, t in (("A", a), ("B", b))})
    return save_pool_files(out, profiles, tensors)


def made_with(folder: str | Path) -> dict | None:
    """The config recorded by the `pool make` that wrote `folder`'s pool (None: no pool, or one
    saved without it)."""
    path = Path(folder) / POOL_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("made_with")
    except ValueError:
        return None


def adapter_factors(tensors: dict[str, torch.Tensor], member: str
                    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (A, B)} of one member from a pool's flat adapter tensors (empty if it has none)."""
    prefix = f"{member}/"
    layers = sorted({k[len(prefix):-2] for k in tensors if k.startswith(prefix)})
    return {k: (tensors[f"{prefix}{k}.A"], tensors[f"{prefix}{k}.B"]) for k in layers}


def load_adapter_tensors(folder: str | Path) -> dict[str, torch.Tensor]:
    """A pool folder's flat adapter tensors (`<member>/<layer>.A|B`)."""
    from safetensors.torch import load_file

    path = Path(folder) / ADAPTER_FILE
    return load_file(str(path)) if path.is_file() else {}
