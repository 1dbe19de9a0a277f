"""Adam over a LoRA population's factor tables, with one optimizer state per slot.

Every organelle is one slot of the population, so its moments are the same slot of tables shaped
like the population's A and B; a step updates only the slots it is given. State stays float32 (the
master weights' type) and is checkpointed, so a resumed run continues bit-exactly.
Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization".
"""

from __future__ import annotations

import torch


def factor_keys(population) -> list[tuple[str, str]]:
    """(layer, "A" | "B") for every factor table, in a fixed order."""
    return [(name, which) for name in population.layer_names for which in "AB"]


def factor_table(population, key: tuple[str, str]) -> torch.Tensor:
    """The stacked table of one factor, e.g. A of layer `name`: (n, r, in)."""
    name, which = key
    return population.A[name] if which == "A" else population.B[name]


class SlotAdam:
    """Adam moments for every slot of a population; `step` moves the given slots only."""

    def __init__(self, population, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.population, self.lr, self.betas, self.eps = population, lr, betas, eps
        self.keys = factor_keys(population)
        self.m = {
            k: torch.zeros_like(factor_table(population, k), dtype=torch.float32) for k in self.keys
        }
        self.v = {k: torch.zeros_like(t) for k, t in self.m.items()}
        self.t = torch.zeros(population.n, dtype=torch.float32, device=population.device)

    @torch.no_grad()
    def step(
        self, slots: list[int], grads: dict[tuple[str, str], torch.Tensor], lr: float | None = None
    ) -> None:
        """One Adam step of `slots` along the gradients of the fitness to descend, each given as
        a (len(slots), ...) tensor per factor key; `lr` overrides the optimizer's rate."""
        lr = self.lr if lr is None else lr
        index = torch.tensor(slots, device=self.population.device)
        b1, b2 = self.betas
        self.t[index] += 1
        t = self.t[index]
        shape = (-1,) + (1,) * 2
        correct1 = (1 - b1**t).view(shape)
        correct2 = (1 - b2**t).view(shape)
        for key in self.keys:
            g = grads[key].float()
            m = self.m[key][index].mul_(b1).add_(g, alpha=1 - b1)
            v = self.v[key][index].mul_(b2).addcmul_(g, g, value=1 - b2)
            self.m[key][index], self.v[key][index] = m, v
            update = lr * (m / correct1) / ((v / correct2).sqrt() + self.eps)
            table = factor_table(self.population, key)
            table[index] -= update.to(table.dtype)

    @torch.no_grad()
    def adopt(self, slot: int, parent: int | None) -> None:
        """A new occupant of `slot`: continue `parent`'s moments, or start from zero."""
        for key in self.keys:
            for moments in (self.m, self.v):
                if parent is None:
                    moments[key][slot].zero_()
                else:
                    moments[key][slot] = moments[key][parent]
        self.t[slot] = 0.0 if parent is None else self.t[parent]

    def state_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """Moments and step counts, keyed under `prefix`."""
        out = {f"{prefix}t": self.t.clone()}
        for name, which in self.keys:
            out[f"{prefix}m.{name}.{which}"] = self.m[(name, which)].clone()
            out[f"{prefix}v.{name}.{which}"] = self.v[(name, which)].clone()
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        """Restore what `state_tensors(prefix)` returned."""
        device = self.population.device
        self.t = tensors[f"{prefix}t"].to(device).clone()
        for name, which in self.keys:
            self.m[(name, which)] = tensors[f"{prefix}m.{name}.{which}"].to(device).clone()
            self.v[(name, which)] = tensors[f"{prefix}v.{name}.{which}"].to(device).clone()
