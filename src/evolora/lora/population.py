"""`LoRAPopulation`: n LoRA adapters over a host's target linear layers, served in one forward.

Per target layer the population holds stacked tensors ``A[name]`` of shape (n, r, in) and
``B[name]`` of shape (n, out, r), initialised as PEFT does (A kaiming-uniform, B = 0), with
``scale = alpha / rank``. Member i changes that layer by ``ΔW_i = scale * B[name][i] @ A[name][i]``.
It implements the hosts' `AdapterRouter`: inside ``with population.route(ids):`` every forward of
the host adds, row by row, the update of the adapter named by that row's id (-1: bare host).

With ``basis="host"`` every adapter lives in its layer's top-r singular directions instead (LoRA-XS,
Bałazy et al. 2024, arXiv:2405.17604): for a host weight W = U S V^T, B is fixed to U_r S_r and
A = R V_r^T, so each member is an r x r matrix R per layer (all zero at the start). Noise, ES
updates, mutations and `project` keep members in that basis; a gradient-free learner then searches
r^2 numbers per layer instead of r (in + out).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from evolora.errors import EvoloraError
from evolora.lora import perturb as _perturb
from evolora.lora.layer import PopulationLinear, Routing

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
KERNELS = ("auto", "gather", "segmented")
BASES = ("random", "host")

Members = int | Sequence[int] | torch.Tensor


class LoRAPopulation:
    """n LoRA adapters attached to one frozen model; see the module docstring for the layout.

    `model_or_host` is a `Host` or a bare model; `targets` are Linear-name suffixes (default: the
    attention and MLP projections); `seed` fixes the initial A; `noise_rank` is the rank of each
    ES perturbation (perturb.py); `dtype` is the storage type of A and B (cast to the activations'
    type in the forward); `kernel` forces "gather" or "segmented" instead of "auto" (layer.py);
    `basis` is "random" (PEFT's initialisation, every entry of A and B free) or "host" (see the
    module docstring).
    """

    def __init__(
        self,
        model_or_host,
        n: int,
        rank: int = 8,
        alpha: float = 16,
        targets: Sequence[str] | None = None,
        seed: int = 0,
        noise_rank: int = 1,
        dtype: torch.dtype = torch.float32,
        kernel: str = "auto",
        basis: str = "random",
    ) -> None:
        model = _model_of(model_or_host)
        _check_int("n", n, 0)
        _check_int("rank", rank, 1)
        _check_int("noise_rank", noise_rank, 1)
        if not alpha > 0:
            raise EvoloraError(f"LoRA alpha must be positive, got {alpha}.")
        if kernel not in KERNELS:
            raise EvoloraError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}.")
        if basis not in BASES:
            raise EvoloraError(f"basis must be one of {', '.join(BASES)}, got {basis!r}.")
        self.rank, self.alpha, self.scale = rank, float(alpha), float(alpha) / rank
        self.noise_rank, self.dtype, self.kernel = noise_rank, dtype, kernel
        self.targets = tuple(targets) if targets is not None else DEFAULT_TARGETS
        self.base_name = (getattr(model_or_host, "name", None)
                          or getattr(model, "name_or_path", None) or None)
        linears, self.peft_targets = _find_targets(model, self.targets)
        self.layer_names: list[str] = list(linears)
        self.layer_shapes = {k: (m.in_features, m.out_features) for k, m in linears.items()}
        self.device = next(model.parameters()).device
        # Per layer (U_r (out, r), S_r (r,), V_r^T (r, in)) of the host weight; empty for "random".
        self.host_basis: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        if basis == "host":
            self.host_basis = {k: _top_singular(m.weight, rank, k) for k, m in linears.items()}
        self.A: dict[str, torch.Tensor] = {}
        self.B: dict[str, torch.Tensor] = {}
        for name, (d_in, d_out) in self.layer_shapes.items():
            self.A[name] = torch.empty(0, rank, d_in, dtype=dtype, device=self.device)
            self.B[name] = torch.empty(0, d_out, rank, dtype=dtype, device=self.device)
        # CPU generator: the same seed gives the same initial adapters on every device.
        self._generator = torch.Generator().manual_seed(seed)
        self._routing: Routing | None = None
        self._model: nn.Module | None = model
        self._originals = linears
        self.add(n)
        for name, linear in linears.items():
            _swap(model, name, PopulationLinear(linear, self, name))

    # ---- size and routing -------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of members."""
        return self.A[self.layer_names[0]].shape[0]

    @property
    def routing(self) -> Routing | None:
        """The adapter of each row of the forward running inside `route(...)` (None outside)."""
        return self._routing

    @contextmanager
    def route(self, adapter_ids: Sequence[int] | torch.Tensor) -> Iterator[None]:
        """Within the block, row b of every forward of the host uses adapter ``adapter_ids[b]``."""
        if self._model is None:
            raise EvoloraError("This population was detached from its model; attach a new one.")
        ids = [_as_int(i) for i in _as_list(adapter_ids)]
        bad = [i for i in ids if i is None or not -1 <= i < self.n]
        if bad:
            raise EvoloraError(
                f"Adapter ids must be integers in [-1, {self.n - 1}] (-1 = bare host), "
                f"got {bad[:5]}."
            )
        previous = self._routing
        self._routing = Routing.build(ids, self.n, self.rank, self.scale, self.device, self.kernel)
        try:
            yield
        finally:
            self._routing = previous

    def detach(self) -> None:
        """Put the original Linear modules back into the model; the population keeps its tensors."""
        if self._model is None:
            return
        for name, linear in self._originals.items():
            _swap(self._model, name, linear)
        self._model = None

    # ---- population operations ----------------------------------------------------------------
    def add(self, k: int) -> list[int]:
        """Append k fresh members (A kaiming-uniform and B = 0; with the host basis R = 0) and
        return their ids. A fresh member leaves the host unchanged."""
        _check_int("k", k, 0)
        self._not_routing("add")
        start = self.n
        for name in self.layer_names:
            fresh_a, fresh_b = self._fresh(k, name)
            self.A[name] = torch.cat([self.A[name], fresh_a])
            self.B[name] = torch.cat([self.B[name], fresh_b])
        return list(range(start, start + k))

    def keep(self, members: Members) -> None:
        """Keep exactly these members, in this order (repeats make copies); ids become 0..k-1."""
        self._not_routing("keep")
        index = self._members(members, "keep")
        for name in self.layer_names:
            self.A[name] = self.A[name].index_select(0, index)
            self.B[name] = self.B[name].index_select(0, index)

    select = keep

    def remove(self, members: Members) -> None:
        """Delete these members; the others keep their order and close the gaps."""
        gone = set(self._members(members, "remove").tolist())
        self.keep([i for i in range(self.n) if i not in gone])

    @torch.no_grad()
    def clone(self, src: Members, dst: Members) -> None:
        """Copy member(s) src into member(s) dst (one src for many dst, or pairwise)."""
        src_i, dst_i = self._members(src, "clone src"), self._members(dst, "clone dst")
        if len(src_i) == 1:
            src_i = src_i.expand(len(dst_i))
        if len(src_i) != len(dst_i):
            raise EvoloraError(f"clone got {len(src_i)} sources for {len(dst_i)} destinations.")
        for name in self.layer_names:
            self.A[name][dst_i] = self.A[name][src_i]
            self.B[name][dst_i] = self.B[name][src_i]

    @torch.no_grad()
    def mutate(
        self, members: Members, sigma: float, generator: torch.Generator | int | None = None
    ) -> None:
        """Add N(0, sigma^2) noise to every A and B entry of these members (with the host basis:
        to every entry of R), seeded by `generator`."""
        index = self._members(members, "mutate")
        gen = torch.Generator().manual_seed(generator) if isinstance(generator, int) else generator
        gen = gen or self._generator
        if self.host_basis:
            for name, (_, _, v_t) in self.host_basis.items():
                shape = (len(index), self.rank, self.rank)
                noise = torch.randn(shape, generator=gen, device=gen.device, dtype=torch.float32)
                self.A[name][index] += (sigma * noise.to(self.device) @ v_t).to(self.dtype)
            return
        for table in (self.A, self.B):
            for name in self.layer_names:
                shape = (len(index), *table[name].shape[1:])
                noise = torch.randn(shape, generator=gen, device=gen.device, dtype=torch.float32)
                table[name][index] += sigma * noise.to(self.device, self.dtype)

    def get_member(self, i: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """A copy of member i: {layer name: (A (r, in), B (out, r))}."""
        i = self._one(i)
        return {k: (self.A[k][i].clone(), self.B[k][i].clone()) for k in self.layer_names}

    @torch.no_grad()
    def set_member(self, i: int, tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Overwrite member i with {layer: (A, B)} covering exactly this population's layers."""
        i = self._one(i)
        missing = [k for k in self.layer_names if k not in tensors]
        extra = [k for k in tensors if k not in self.A]
        if missing or extra:
            raise EvoloraError(
                f"set_member needs exactly the population's {len(self.layer_names)} layers; "
                f"missing {missing[:3]}, unknown {extra[:3]}."
            )
        for name, (a, b) in tensors.items():
            self._check_factor_shapes(name, tuple(a.shape), tuple(b.shape))
        for name, (a, b) in tensors.items():
            self.A[name][i] = a.to(self.device, self.dtype)
            self.B[name][i] = b.to(self.device, self.dtype)
        self.project(i)

    @torch.no_grad()
    def reset_member(self, i: int) -> None:
        """Give member i fresh initial tensors (as `add` does)."""
        i = self._one(i)
        for name in self.layer_names:
            self.A[name][i], self.B[name][i] = (t[0] for t in self._fresh(1, name))

    @torch.no_grad()
    def project(self, members: Members) -> None:
        """Put members back in the host basis: each layer's ΔW becomes U_r U_r^T ΔW V_r V_r^T, the
        nearest update the basis can hold (exact for an update it already holds, such as a merge
        of its own members). Does nothing with the random basis."""
        if not self.host_basis:
            return
        index = self._members(members, "project")
        for name, (u, s, v_t) in self.host_basis.items():
            a = self.A[name][index].float()
            b = self.B[name][index].float()
            core = (u.t() @ b) @ (a @ v_t.t()) / s[:, None]  # R with U_r S_r R V_r^T = B A
            self.A[name][index] = (core @ v_t).to(self.dtype)
            self.B[name][index] = (u * s).expand_as(b).to(self.dtype)

    def delta(self, i: int, name: str) -> torch.Tensor:
        """The exact update ΔW = scale * B_i @ A_i of member i on layer `name`, shape (out, in)."""
        i = self._one(i)
        if name not in self.A:
            raise EvoloraError(f"Unknown layer {name!r}; the population's layers are e.g. "
                               f"{self.layer_names[:3]}.")
        return self.scale * self.B[name][i] @ self.A[name][i]

    # ---- checkpoints ----------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """All members as a flat {"<layer>.A": (n, r, in), "<layer>.B": (n, out, r)} dict."""
        out = {}
        for name in self.layer_names:
            out[f"{name}.A"] = self.A[name].detach().contiguous()
            out[f"{name}.B"] = self.B[name].detach().contiguous()
        return out

    @torch.no_grad()
    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Replace all members by a `state_tensors()` dict (the member count may differ)."""
        self._not_routing("load_state_tensors")
        expected = {f"{k}.{f}" for k in self.layer_names for f in "AB"}
        if set(tensors) != expected:
            wrong = sorted(set(tensors) ^ expected)[:3]
            raise EvoloraError(
                f"Population checkpoint does not match this population's layers (first differing "
                f"keys: {wrong}); it was saved for other targets or another host."
            )
        n = tensors[f"{self.layer_names[0]}.A"].shape[0]
        for name in self.layer_names:
            a, b = tensors[f"{name}.A"], tensors[f"{name}.B"]
            if a.dim() != 3 or b.dim() != 3 or a.shape[0] != n or b.shape[0] != n:
                raise EvoloraError(
                    f"Population checkpoint layer {name}: A {tuple(a.shape)} and B "
                    f"{tuple(b.shape)} must both be stacked over the same {n} members."
                )
            self._check_factor_shapes(name, tuple(a.shape[1:]), tuple(b.shape[1:]))
        for name in self.layer_names:
            self.A[name] = tensors[f"{name}.A"].to(self.device, self.dtype).clone()
            self.B[name] = tensors[f"{name}.B"].to(self.device, self.dtype).clone()

    # ---- evolution-strategy perturbations (see perturb.py) -------------------------------------
    def noise(self, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The low-rank perturbation eps(seed): {layer: (eps_A, eps_B)}, regenerated bit-exactly."""
        return _perturb.noise(self, seed)

    def perturb(self, src: int, dst_ids: Sequence[int], seeds: Sequence[int], sigma: float) -> None:
        """Antithetic pairs: dst[2k] = theta + sigma eps_k, dst[2k+1] = theta - sigma eps_k."""
        _perturb.perturb(self, src, dst_ids, seeds, sigma)

    def es_update(
        self, member: int, seeds: Sequence[int], weights, sigma: float, lr: float
    ) -> None:
        """theta += lr / (len(seeds) * sigma) * sum_k weights[k] * eps_k, in place on `member`."""
        _perturb.es_update(self, member, seeds, weights, sigma, lr)

    # ---- helpers ----------------------------------------------------------------------------
    def _fresh(self, k: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """k fresh (A, B) pairs for one layer, stacked: (k, r, in) and (k, out, r)."""
        d_in, d_out = self.layer_shapes[name]
        if self.host_basis:
            u, s, _ = self.host_basis[name]
            a = torch.zeros(k, self.rank, d_in, device=self.device)
            return a.to(self.dtype), (u * s).expand(k, -1, -1).to(self.dtype).clone()
        # PEFT: kaiming_uniform_(a=sqrt(5)) on (r, in) gives U(-1/sqrt(in), 1/sqrt(in)).
        bound = 1.0 / math.sqrt(d_in)
        u = torch.rand(k, self.rank, d_in, generator=self._generator, dtype=torch.float32)
        a = ((2 * u - 1) * bound).to(self.device, self.dtype)
        return a, torch.zeros(k, d_out, self.rank, dtype=self.dtype, device=self.device)

    def _members(self, members: Members, what: str) -> torch.Tensor:
        items = [_as_int(m) for m in _as_list(members)]
        bad = [m for m in items if m is None or not 0 <= m < self.n]
        if bad:
            raise EvoloraError(
                f"{what}: member ids must be integers in [0, {self.n - 1}]; got {bad[:5]}."
            )
        return torch.tensor(items, dtype=torch.long, device=self.device)

    def _one(self, i: int) -> int:
        return int(self._members(i, "member")[0])

    def _check_factor_shapes(self, name: str, a: tuple, b: tuple) -> None:
        d_in, d_out = self.layer_shapes[name]
        want_a, want_b = (self.rank, d_in), (d_out, self.rank)
        if a != want_a or b != want_b:
            raise EvoloraError(
                f"Layer {name}: got A {a} and B {b}, expected A {want_a} and B {want_b} "
                f"(rank {self.rank}, in {d_in}, out {d_out})."
            )

    def _not_routing(self, what: str) -> None:
        if self._routing is not None:
            raise EvoloraError(f"{what} changes member ids; call it outside population.route().")

    def __repr__(self) -> str:
        return (f"LoRAPopulation(n={self.n}, rank={self.rank}, alpha={self.alpha}, "
                f"layers={len(self.layer_names)}, device={self.device})")


def _top_singular(
    weight: torch.Tensor, rank: int, name: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(U_r, S_r, V_r^T) of a weight's top `rank` singular directions, in float32."""
    if rank > min(weight.shape):
        raise EvoloraError(
            f"basis='host' needs rank <= min(out, in) of every layer; {name} is "
            f"{tuple(weight.shape)} and rank is {rank}."
        )
    u, s, v_t = torch.linalg.svd(weight.detach().float(), full_matrices=False)
    if not s[rank - 1] > 0:
        raise EvoloraError(f"basis='host': layer {name} has fewer than {rank} non-zero directions.")
    return u[:, :rank].contiguous(), s[:rank].contiguous(), v_t[:rank].contiguous()


def _model_of(model_or_host) -> nn.Module:
    if isinstance(model_or_host, nn.Module):
        return model_or_host
    model = getattr(model_or_host, "model", None)
    if not isinstance(model, nn.Module):
        raise EvoloraError(
            f"LoRAPopulation needs a Host or a torch model, got {type(model_or_host).__name__}."
        )
    return model


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def _find_targets(model: nn.Module, targets: tuple[str, ...]) -> tuple[dict, list[str]]:
    """The Linear layers whose names end with a target, and the target list PEFT should be given."""
    if not targets:
        raise EvoloraError("targets is empty; name at least one linear layer, e.g. 'q_proj'.")
    modules = dict(model.named_modules())
    if any(isinstance(m, PopulationLinear) for m in modules.values()):
        raise EvoloraError("This model already carries a LoRA population; detach() it first.")
    linears = {k: m for k, m in modules.items() if isinstance(m, nn.Linear)}
    found = {k: m for k, m in linears.items() if any(_matches(k, t) for t in targets)}
    missing = [t for t in targets if not any(_matches(k, t) for k in found)]
    if missing:
        kinds = sorted({k.rsplit(".", 1)[-1] for k in linears})
        raise EvoloraError(
            f"Target layer(s) {', '.join(missing)} not found among the model's linear layers "
            f"({', '.join(kinds)})."
        )
    # PEFT matches suffixes the same way but also non-Linear modules; fall back to full names.
    peft_match = [k for k in modules if k and any(_matches(k, t) for t in targets)]
    peft_targets = list(targets) if sorted(peft_match) == sorted(found) else list(found)
    return found, peft_targets


def _swap(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def _check_int(field: str, value, low: int) -> None:
    if _as_int(value) is None or value < low:
        raise EvoloraError(f"{field} must be an integer >= {low}, got {value!r}.")


def _as_int(value) -> int | None:
    """value as a Python int if it is an integer (int, numpy or 0-d torch integer), else None."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        return None
    return int(value.__index__())


def _as_list(values) -> list:
    if isinstance(values, torch.Tensor):
        return values.flatten().tolist() if values.dim() else [values.item()]
    return [values] if hasattr(values, "__index__") else list(values)
