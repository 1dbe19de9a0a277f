"""The family registry: families register their class by name; callers look them up by name."""

from __future__ import annotations

from evolora.errors import EvoloraError
from evolora.tasks.base import TaskFamily

_FAMILIES: dict[str, TaskFamily] = {}


def register_family(cls: type[TaskFamily]) -> type[TaskFamily]:
    """Register a `TaskFamily` subclass under its `name` (usable as a class decorator).

    Registering another class under a taken name replaces it, so a user can override a family.
    """
    if not (isinstance(cls, type) and issubclass(cls, TaskFamily)):
        raise EvoloraError(f"register_family expects a TaskFamily subclass, got {cls!r}.")
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name or name != name.strip() or ":" in name:
        raise EvoloraError(
            f"Task family class {cls.__name__} needs a non-empty `name` without spaces at the "
            f"ends or ':' (got {name!r})."
        )
    _FAMILIES[name] = cls()
    return cls


def get_family(name: str) -> TaskFamily:
    """The registered family called `name`; EvoloraError listing the valid names otherwise."""
    try:
        return _FAMILIES[name]
    except (KeyError, TypeError):
        raise EvoloraError(
            f"Unknown task family {name!r}; valid families are {', '.join(family_names())}."
        ) from None


def family_names() -> list[str]:
    """Names of all registered families, sorted."""
    return sorted(_FAMILIES)


def is_family(name: str) -> bool:
    """Whether a family called `name` is registered."""
    return isinstance(name, str) and name in _FAMILIES
