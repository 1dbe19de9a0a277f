"""The LoRA population engine: many adapters in one forward, exact merges, PEFT interop."""

from __future__ import annotations

from evolora.lora.merge import MERGE_METHODS, MergeResult, merge, register_merge
from evolora.lora.peft_io import export_peft, import_peft, read_peft_update
from evolora.lora.population import DEFAULT_TARGETS, LoRAPopulation

__all__ = [
    "DEFAULT_TARGETS",
    "MERGE_METHODS",
    "LoRAPopulation",
    "MergeResult",
    "export_peft",
    "import_peft",
    "merge",
    "read_peft_update",
    "register_merge",
]
