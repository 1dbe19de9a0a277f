"""The built-in task families; importing this package registers them."""

from __future__ import annotations

from evolora.tasks.families.json_repair import JsonRepairFamily
from evolora.tasks.families.logic import LogicFamily
from evolora.tasks.families.math import MathFamily
from evolora.tasks.families.sequence import SequenceFamily
from evolora.tasks.families.sorting import SortingFamily

BUILTIN_FAMILIES = (MathFamily, LogicFamily, SortingFamily, SequenceFamily, JsonRepairFamily)

__all__ = [
    "BUILTIN_FAMILIES",
    "JsonRepairFamily",
    "LogicFamily",
    "MathFamily",
    "SequenceFamily",
    "SortingFamily",
]
