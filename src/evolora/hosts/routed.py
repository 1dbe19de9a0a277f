"""Adapters to put on a host for evaluation: one PEFT LoRA folder, or a routed set of them.

A routed set (what `evolora export --member colony` writes) is a folder holding

    routing.json     {"format": "evolora-routed-adapters", "version": 1, "default": "merged",
                      "routes": {"math:1": "organelle-7", ...}, "adapters": ["merged", ...]}
    merged/          one PEFT LoRA adapter folder per name in "adapters"
    organelle-7/

An example of family f and difficulty d goes through the adapter `routes["f:d"]`, and through
`default` when its cell has no route (a user's own records may have no family at all).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from evolora.errors import EvoloraError

ROUTING_FILE = "routing.json"
FORMAT = "evolora-routed-adapters"


@dataclass
class Routed:
    """Adapters loaded into one population on a host, and the slot serving each cell."""

    population: object  # an evolora.lora.LoRAPopulation attached to the host
    slots: dict[str, int]  # adapter name -> population slot
    routes: dict[str, str]  # "family:difficulty" -> adapter name
    default: str

    def slot_for(self, family: str | None, difficulty: int | None) -> int:
        """The slot that serves an example of this family and difficulty."""
        return self.slots[self.routes.get(f"{family}:{difficulty}", self.default)]


def write_routing(folder: Path, routes: dict[str, str], default: str, adapters: list[str]) -> Path:
    """Write routing.json beside the adapter folders already written into `folder`."""
    path = Path(folder) / ROUTING_FILE
    table = {"format": FORMAT, "version": 1, "default": default, "routes": routes,
             "adapters": adapters}  # fmt: skip
    path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    return path


def read_routing(folder: Path) -> dict:
    """routing.json of a routed set, checked; EvoloraError naming what is wrong."""
    path = Path(folder) / ROUTING_FILE
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as problem:
        raise EvoloraError(f"{path} is not readable JSON ({problem}).") from None
    if not isinstance(table, dict) or table.get("format") != FORMAT:
        raise EvoloraError(f"{path} is not an evolora routing table (format '{FORMAT}').")
    adapters = table.get("adapters")
    if not isinstance(adapters, list) or table.get("default") not in adapters:
        raise EvoloraError(f"{path}: 'default' must name one of the 'adapters'.")
    unknown = sorted(set(table.get("routes", {}).values()) - set(adapters))
    if unknown:
        raise EvoloraError(f"{path}: routes name adapters not in 'adapters': {', '.join(unknown)}.")
    return table


def load_adapters(host, folder: str | Path) -> Routed:
    """Put the PEFT adapter (or routed set) at `folder` on `host`, all in one population."""
    from evolora.lora import LoRAPopulation, import_peft

    folder = Path(folder)
    if not folder.is_dir():
        raise EvoloraError(f"Adapter '{folder}' is not a folder (give a PEFT adapter folder).")
    if (folder / ROUTING_FILE).is_file():
        table = read_routing(folder)
        names, routes, default = list(table["adapters"]), dict(table["routes"]), table["default"]
        paths = [folder / name for name in names]
    else:
        names, routes, default, paths = ["adapter"], {}, "adapter", [folder]
    configs = [_peft_config(path) for path in paths]
    ranks = {c.get("r") for c in configs}
    if len(ranks) != 1:
        raise EvoloraError(f"The adapters in {folder} have different ranks ({sorted(ranks)}).")
    targets = sorted({t for c in configs for t in _targets(c, folder)})
    population = LoRAPopulation(host, n=len(paths), rank=ranks.pop(), targets=targets)
    for slot, path in enumerate(paths):
        import_peft(path, population, slot)
    return Routed(population, dict(zip(names, range(len(names)), strict=True)), routes, default)


def _peft_config(folder: Path) -> dict:
    path = folder / "adapter_config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise EvoloraError(
            f"{folder} is not a PEFT adapter folder: {path.name} is missing or unreadable."
        ) from None


def _targets(config: dict, folder: Path) -> list[str]:
    targets = config.get("target_modules")
    if isinstance(targets, str) or not targets:
        raise EvoloraError(
            f"The adapter in {folder} names its target layers by pattern or not at all; evolora "
            "loads adapters whose target_modules is a list of layer names."
        )
    return list(targets)
