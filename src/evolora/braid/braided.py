"""`BraidedLLM`: the pool's models run side by side; at each chosen fusion layer their hidden states
are mixed by a fusion strategy and the fused state is fed back into every selected model's residual
stream, so every later layer of every model computes on it.

At fusion slot l (after decoder layer l) model i's state becomes

    h_i <- h_i + g[l, i] * (P_out_i(sum_j W[i, j] P_in_j(h_j)) - h_i)

with W from the strategy (fusion.py), a learned feedback gate g = sigmoid(.) in (0, 1), and learned
projections P_in / P_out into a shared width when hidden sizes differ (identity otherwise). The
braid's next-token distribution mixes the selected models' distributions with the strategy's
output-slot weights (or averages logits / multiplies experts for the output-level baselines).
Every strategy has its own `FusionBank`; a (strategy, lead, joiner) triple may also have a pair
bank of its own (`add_pair_bank`), which serves the rows where that joiner alone joins that lead
(trained on the lead's family, where one shared bank must serve every team). Only banks train, the
models stay frozen. Each model runs
only on the batch rows whose plan selects it (its states are spread to the full batch only at a
fusion point), so a batch of pairs from a pool of M models costs 2/M of running every model.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn

from evolora.braid.fusion import STRATEGIES, combine_outputs, strategy_names
from evolora.braid.plan import Plan
from evolora.braid.pool import ModelPool
from evolora.braid.stack import additive_mask
from evolora.errors import EvoloraError
from evolora.telemetry.atomic import atomic_write_text

FUSION_FILE = "fusion.safetensors"
BRAID_FILE = "braid.json"
VERSION = 2  # 2: every strategy holds per-lead scores (`lead_pair`)


class FusionBank(nn.Module):
    """One strategy's parameters for every slot: mixing, feedback gates and projections."""

    def __init__(self, strategy: str, hidden: list[int], slots: int, dim: int) -> None:
        super().__init__()
        models = len(hidden)
        self.mixer = STRATEGIES[strategy](models, slots + 1, dim)
        self.feedback = nn.Parameter(torch.zeros(slots, models))  # sigmoid(0) = 0.5
        same = all(h == dim for h in hidden)
        self.proj_in = nn.ModuleList(nn.Identity() if same else _eye(h, dim) for h in hidden)
        self.proj_out = nn.ModuleList(nn.Identity() if same else _eye(dim, h) for h in hidden)


class _Rows:
    """The batch rows one model runs on: `take` them from a full batch, `spread` them back."""

    def __init__(self, rows: torch.Tensor, batch: int) -> None:
        self.rows, self.batch = rows, batch
        self.every = len(rows) == batch  # rows are sorted and distinct: all of them, in order

    def __call__(self, full: torch.Tensor) -> torch.Tensor:
        return full if self.every else full.index_select(0, self.rows)

    def spread(self, part: torch.Tensor) -> torch.Tensor:
        """A full-batch tensor holding `part` at the rows and zeros elsewhere."""
        if self.every:
            return part
        full = part.new_zeros((self.batch, *part.shape[1:]))
        return full.index_copy(0, self.rows, part)


def pair_key(strategy: str, lead: int, joiner: int) -> str:
    """The name of the pair bank of `strategy` for member `joiner` joining member `lead`."""
    return f"{strategy}__{lead}__{joiner}"


def _eye(d_in: int, d_out: int) -> nn.Linear:
    """A Linear initialised to the (truncated or zero-padded) identity."""
    layer = nn.Linear(d_in, d_out, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(d_out, d_in))
    return layer


class BraidedLLM(nn.Module):
    """A braid over a `ModelPool` with one fusion bank per layer-fusion strategy."""

    def __init__(self, pool: ModelPool, strategies: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.pool = pool
        self.stacks = pool.stacks
        hidden = [s.hidden for s in self.stacks]
        self.dim = max(hidden)
        self.slots = pool.depth
        names = tuple(strategies) if strategies is not None else tuple(STRATEGIES)
        self.banks = nn.ModuleDict(
            {s: FusionBank(s, hidden, self.slots, self.dim) for s in names}
        )
        self.pair_banks = nn.ModuleDict()
        self.to(pool.device)

    def add_pair_bank(self, strategy: str, lead: int, joiner: int) -> FusionBank:
        """A bank of its own for rows where member `joiner` alone joins member `lead` under
        `strategy`, starting as a copy of that strategy's bank (replaced if it exists)."""
        if strategy not in self.banks or lead == joiner:
            raise EvoloraError(f"A pair bank needs a layer-fusion strategy of this braid "
                               f"({', '.join(self.banks)}) and two different members.")
        bank = copy.deepcopy(self.banks[strategy])
        self.pair_banks[pair_key(strategy, lead, joiner)] = bank
        return bank

    def pairs(self) -> list[tuple[str, int, int]]:
        """(strategy, lead, joiner) of every pair bank."""
        out = []
        for key in self.pair_banks:
            strategy, lead, joiner = key.split("__")
            out.append((strategy, int(lead), int(joiner)))
        return out

    # ---- forward ----------------------------------------------------------------------------
    def forward(self, ids, key_mask, positions, plan: Plan, caches=None) -> torch.Tensor:
        """Next-token log-probs (B, T, V) for the last T tokens; `key_mask` (B, past + T).

        Each model runs only on the rows whose plan selects it (a pair of a six-model pool costs
        a third of running every model on every row); `caches[m]` holds model m's rows only."""
        batch = ids.shape[0]
        keys = self._bank_keys(plan)
        rows = {m: plan.models[:, m].nonzero().flatten() for m in range(self.pool.size)}
        active = [m for m in range(self.pool.size) if len(rows[m])]
        hs, ropes, masks, places = {}, {}, {}, {}
        for m in active:
            take = _Rows(rows[m], batch)
            masks[m] = additive_mask(take(key_mask), ids.shape[1], self.stacks[m].model.dtype)
            places[m] = take(positions)
            hs[m] = self.stacks[m].embed(take(ids))
            ropes[m] = self.stacks[m].rope(hs[m], places[m])
        for layer in range(max(self.stacks[m].depth for m in active)):
            for m in active:
                if layer < self.stacks[m].depth:
                    cache = caches[m] if caches is not None else None
                    hs[m] = self.stacks[m].layer(layer, hs[m], masks[m], places[m], ropes[m],
                                                 cache)
            if layer < self.slots and bool(plan.layers[:, layer].any()):
                self._fuse(hs, rows, active, plan, layer, keys)
        normed = {m: self.stacks[m].final(hs[m]) for m in active}
        return self._output(normed, rows, active, plan, keys)

    def _bank_keys(self, plan: Plan) -> list[str | None]:
        """Each row's bank: its pair bank when it is a pair that has one, else its strategy's
        bank (None: a strategy with no bank here)."""
        order = strategy_names()
        keys = []
        for chosen, strategy, lead in zip(plan.models.tolist(), plan.strategy.tolist(),
                                          plan.lead.tolist(), strict=True):
            name = order[strategy]
            key = name if name in self.banks else None
            if key is not None and len(self.pair_banks) and sum(chosen) == 2:
                joiner = next(m for m, on in enumerate(chosen) if on and m != lead)
                pair = pair_key(name, lead, joiner)
                key = pair if pair in self.pair_banks else key
            keys.append(key)
        return keys

    def _groups(self, keys: list[str | None], rows: torch.Tensor):
        """(bank, row indices) for each bank serving some of the `rows` (B,) bool."""
        wanted = rows.tolist()
        for key in dict.fromkeys(k for k in keys if k is not None):
            hit = [r for r, (k, on) in enumerate(zip(keys, wanted, strict=True))
                   if on and k == key]
            if hit:
                bank = self.pair_banks[key] if key in self.pair_banks else self.banks[key]
                yield bank, torch.tensor(hit, device=rows.device)

    def _states(self, bank: FusionBank, hs: dict, rows: torch.Tensor) -> torch.Tensor:
        """Projected states of the rows (b, T, M, D) from full-batch states `hs`; models not
        running this batch are zeros."""
        first = next(iter(hs.values()))
        shape = (len(rows), first.shape[1], self.dim)
        return torch.stack([
            bank.proj_in[m](hs[m].index_select(0, rows)) if m in hs
            else first.new_zeros(shape) for m in range(self.pool.size)
        ], dim=2)

    def _fuse(self, hs: dict, rows: dict, active: list[int], plan: Plan, slot: int,
              keys: list[str | None]) -> None:
        multi = plan.models.sum(-1) > 1  # one model alone fuses with nothing
        groups = list(self._groups(keys, plan.layers[:, slot] & multi))
        if not groups:
            return
        batch = plan.models.shape[0]
        full = {m: _Rows(rows[m], batch).spread(hs[m]) for m in active}
        for bank, picked in groups:
            sub = plan.take(picked)
            states = self._states(bank, full, picked)
            mixing = bank.mixer.mix(states, sub.models, slot, sub.temperature, sub.top_k,
                                    sub.lead)
            fused = mixing @ states  # (b, T, M, M) @ (b, T, M, D) -> (b, T, M, D)
            gates = torch.sigmoid(bank.feedback[slot])
            for m in active:
                old = full[m].index_select(0, picked)
                new = old + gates[m] * (bank.proj_out[m](fused[:, :, m]) - old)
                keep = sub.models[:, m].view(-1, 1, 1)
                full[m] = full[m].index_copy(0, picked, torch.where(keep, new, old))
        for m in active:
            hs[m] = _Rows(rows[m], batch)(full[m])

    def _output(self, normed: dict, rows: dict, active: list[int], plan: Plan,
                keys: list[str | None]) -> torch.Tensor:
        """The braid's next-token log-probs from each model's final-normed states on its rows."""
        batch = plan.models.shape[0]
        spread = {m: _Rows(rows[m], batch).spread for m in active}
        logits = torch.stack(  # rows that do not run a model hold zeros for it
            [spread[m](self.stacks[m].logits(normed[m])) for m in active], dim=2
        ).float()  # (B, T, Ma, V)
        logprobs = torch.log_softmax(logits, dim=-1)
        select = plan.models[:, active]
        out = torch.empty_like(logprobs[:, :, 0])
        order = strategy_names()
        done = torch.zeros_like(plan.strategy, dtype=torch.bool)
        full = None
        for bank, picked in self._groups(keys, torch.ones_like(done)):
            if full is None:
                full = {m: spread[m](normed[m]) for m in active}
            sub = plan.take(picked)
            states = self._states(bank, full, picked)
            mixing = bank.mixer.mix(states, sub.models, self.slots, sub.temperature,
                                    sub.top_k, sub.lead)
            weights = mixing.mean(2)[:, :, active]  # (b, T, Ma)
            out[picked] = combine_outputs(bank.mixer.name, logprobs[picked], logits[picked],
                                          select[picked], weights)
            done[picked] = True
        for name in order:
            picked = (~done & (plan.strategy == order.index(name))).nonzero().flatten()
            if len(picked):
                if name not in ("logit_average", "product_of_experts"):
                    raise EvoloraError(f"This braid has no trained bank for strategy {name!r}.")
                out[picked] = combine_outputs(name, logprobs[picked], logits[picked],
                                              select[picked], None)
        return out

    # ---- save / load ------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write fusion.safetensors (every bank's parameters, pair banks under `pairs.`) and
        braid.json."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {**self.banks.state_dict(),
                   **{f"pairs.{k}": v for k, v in self.pair_banks.state_dict().items()}}
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        save_file(tensors, str(folder / FUSION_FILE))
        meta = {"version": VERSION, "models": self.pool.names, "strategies": list(self.banks),
                "pairs": [list(p) for p in self.pairs()], "slots": self.slots, "dim": self.dim}
        atomic_write_text(folder / BRAID_FILE, json.dumps(meta, indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path, pool: ModelPool) -> BraidedLLM:
        """A braid saved by `save`, over `pool` (which must hold the same members)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / BRAID_FILE).is_file() or not (folder / FUSION_FILE).is_file():
            raise EvoloraError(f"'{folder}' holds no saved braid ({BRAID_FILE}, {FUSION_FILE}).")
        meta = json.loads((folder / BRAID_FILE).read_text(encoding="utf-8"))
        if meta.get("version") != VERSION:
            raise EvoloraError(
                f"The braid in '{folder}' has format version {meta.get('version')}; this code "
                f"reads version {VERSION}: train it again (`evolora braid train`)."
            )
        if meta.get("models") != pool.names:
            raise EvoloraError(
                f"The braid in '{folder}' was trained for models {meta.get('models')}, but the "
                f"pool holds {pool.names}."
            )
        braid = cls(pool, tuple(meta["strategies"]))
        for strategy, lead, joiner in meta.get("pairs", []):
            braid.add_pair_bank(strategy, lead, joiner)
        tensors = load_file(str(folder / FUSION_FILE), device=str(pool.device))
        braid.banks.load_state_dict({k: v for k, v in tensors.items()
                                     if not k.startswith("pairs.")})
        braid.pair_banks.load_state_dict({k[6:]: v for k, v in tensors.items()
                                          if k.startswith("pairs.")})
        return braid
