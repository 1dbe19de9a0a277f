"""The colony: living organelles, their slots in one LoRA population, and the merged adapter.

Slot 0 of the population holds the colony's merged (assimilated) adapter; slots 1..max hold
organelles; the slots after those are scratch space for evolution-strategy perturbations and trial
merges. Slots are fixed at start so one batched forward can serve everything.
"""

from __future__ import annotations

import numpy as np

from evolora.ecology.config import EcologyConfig
from evolora.ecology.organelle import Organelle
from evolora.lora import LoRAPopulation

MERGED_SLOT = 0
HOST_SLOT = -1  # the bare host, without any adapter (the population's convention)


def adapter_population(host, config: EcologyConfig, n: int) -> LoRAPopulation:
    """n fresh adapter slots on the host, shaped by `config.lora` (and seeded by `config.seed`)."""
    return LoRAPopulation(
        host,
        n=n,
        rank=config.lora.rank,
        alpha=config.lora.alpha,
        targets=config.lora.targets,
        seed=config.seed,
        noise_rank=config.learning.es.noise_rank,
        basis=config.lora.basis,
    )


def scratch_width(config: EcologyConfig) -> int:
    """Scratch slots one learning organelle needs: the most any of the configured rules asks."""
    from evolora.ecology.learning import RULES

    return max(RULES[name].scratch_slots(config) for name in config.learning.rules)


def slots_needed(config: EcologyConfig) -> int:
    """Adapter slots a colony of this config uses: the merged adapter, `population.max`
    organelles, their learning scratch and one trial merge."""
    return 1 + config.population.max * (1 + scratch_width(config)) + 1


class Colony:
    """Who lives where: organelle bookkeeping on top of a fixed-size LoRA population."""

    def __init__(self, config: EcologyConfig):
        self.config = config
        self.organelles: list[Organelle] = []
        self.next_id = 1
        self.capacity = 1 + config.population.max
        self.scratch_width = scratch_width(config)
        # The learning rules' scratch for every organelle, then one slot for trial merges.
        self.scratch = list(range(self.capacity, slots_needed(config)))

    def scratch_for(self, k: int) -> list[int]:
        """The scratch slots of the k-th organelle learning in a step."""
        return self.scratch[self.scratch_width * k : self.scratch_width * (k + 1)]

    @property
    def slots_needed(self) -> int:
        return self.capacity + len(self.scratch)

    def free_slots(self) -> list[int]:
        used = {o.slot for o in self.organelles}
        return [s for s in range(1, self.capacity) if s not in used]

    def spawn(
        self,
        parent: Organelle | None,
        energy: float,
        generation: int,
        niche: str | None = None,
    ) -> Organelle | None:
        """A new organelle in a free slot (None when full); its species follows the parent's (a
        new one for an organelle seeded by the colony), its niche is `niche` when given, else
        the parent's."""
        free = self.free_slots()
        if not free:
            return None
        organelle = Organelle(
            id=self.next_id,
            slot=free[0],
            species=parent.species if parent else self.next_id,
            parent=parent.id if parent else None,
            born=generation,
            energy=energy,
            niche=niche if niche is not None or parent is None else parent.niche,
        )
        self.next_id += 1
        self.organelles.append(organelle)
        return organelle

    def remove(self, organelle: Organelle) -> None:
        self.organelles.remove(organelle)

    def energies(self) -> np.ndarray:
        return np.array([o.energy for o in self.organelles], dtype=float)

    def state(self) -> dict:
        return {"next_id": self.next_id, "organelles": [o.state() for o in self.organelles]}

    def load_state(self, state: dict) -> None:
        self.next_id = state["next_id"]
        self.organelles = [Organelle.from_state(s) for s in state["organelles"]]
