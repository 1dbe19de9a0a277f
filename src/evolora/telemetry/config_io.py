"""YAML configs in and out of pydantic models, with one-sentence errors a user can act on.

cfg = load_config("configs/ecology.yaml", EcologyConfig)
# configs/ecology.yaml: field 'energy.m': must be >= 0 (got -1)
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from evolora.errors import EvoloraError

Model = TypeVar("Model", bound=BaseModel)

_BOUNDS = {
    "greater_than_equal": ">=",
    "greater_than": ">",
    "less_than_equal": "<=",
    "less_than": "<",
}


def load_config(path: str | Path, model: type[Model]) -> Model:
    """Read a YAML file into `model`; any problem is an `EvoloraError` naming file and field."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise EvoloraError(f"Config file '{path}' {what}.")
    return validate_config(read_yaml(path), model, source=str(path))


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a YAML file whose top level is a mapping (an empty file is an empty mapping)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        reason = getattr(problem, "problem", None) or str(problem).splitlines()[0]
        raise EvoloraError(f"{path}:{where} not valid YAML ({reason}).") from problem
    except UnicodeDecodeError as problem:
        raise EvoloraError(f"{path}: not a UTF-8 text file.") from problem
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise EvoloraError(
            f"{path}: the top level must be a mapping of settings (key: value), "
            f"not a {type(data).__name__}."
        )
    return dict(data)


def validate_config(data: Mapping[str, Any], model: type[Model], source: str = "config") -> Model:
    """Validate a mapping against `model`, turning pydantic's first error into one sentence."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as problem:
        raise EvoloraError(describe_validation_error(problem, model, source)) from problem


def describe_validation_error(problem: ValidationError, model: type[BaseModel], source: str) -> str:
    """`"<source>: field 'a.b': <what is wrong> (got <value>)"` for the first error."""
    errors = problem.errors()
    first = errors[0]
    location = tuple(first["loc"])
    field = _dotted(location)
    kind = first["type"]
    if kind == "extra_forbidden":
        what = "unknown key" + _valid_keys_hint(model, location)
    elif kind == "missing":
        what = "required but missing"
    elif kind in _BOUNDS:
        bound = next(iter(first.get("ctx", {}).values()), "?")
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)  # "must be >= 0", not ">= 0.0", for a float field
        what = f"must be {_BOUNDS[kind]} {bound} (got {_shown(first.get('input'))})"
    else:
        message = str(first["msg"])
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        message = message.replace("Input should be", "must be", 1)
        what = f"{message[:1].lower()}{message[1:]}".rstrip(".")
        if "input" in first:
            what += f" (got {_shown(first['input'])})"
    sentence = f"{source}: field '{field}': {what}" if field else f"{source}: {what}"
    if len(errors) > 1:
        sentence += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return sentence


def dump_config(config: BaseModel | Mapping[str, Any]) -> str:
    """A config (model or mapping) as YAML text, keys in declaration order."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True)


def config_to_dict(config: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """A config as plain JSON-compatible data."""
    if isinstance(config, BaseModel):
        return config.model_dump(mode="json")
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"a config must be a pydantic model or a mapping, not {type(config).__name__}")


def _dotted(location: tuple[Any, ...]) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _valid_keys_hint(model: type[BaseModel], location: tuple[Any, ...]) -> str:
    """', did you mean 'x'? (valid keys: ...)' for the model that owns the unknown key."""
    owner = _model_at(model, location[:-1])
    if owner is None:
        return ""
    keys = list(owner.model_fields)
    hint = ""
    close = difflib.get_close_matches(str(location[-1]), keys, n=1)
    if close:
        hint = f", did you mean '{close[0]}'?"
    return f"{hint} (valid keys: {', '.join(keys)})"


def _model_at(model: type[BaseModel], location: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model reached by following `location` through nested field types."""
    current: Any = model
    skip_key = False  # the next part is a list index or a dict key, not a field
    for part in location:
        if isinstance(part, int) or skip_key:
            skip_key = False
            continue
        if not _is_model(current) or part not in current.model_fields:
            return None
        annotation = current.model_fields[part].annotation
        skip_key = typing.get_origin(annotation) in (dict, Mapping)
        current = _inner_model(annotation)
    return current if _is_model(current) else None


def _inner_model(annotation: Any) -> Any:
    """The one model class inside Optional[...], list[...], dict[str, ...] (else the input)."""
    if _is_model(annotation):
        return annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) or args:
        models = [inner for inner in map(_inner_model, args) if _is_model(inner)]
        if len(models) == 1:
            return models[0]
    return annotation


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def layered(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it: nested mappings merge key by key, the rest replace."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = layered(merged[key], value)
        else:
            merged[key] = value
    return merged
