"""User datasets: JSONL files and Hugging Face `datasets` (local folders or the local cache only).

A record is an object with `prompt` and `answer` (strings; an integer or decimal answer is taken
as its text), and optionally `family` (default "dataset"), `difficulty` (1-5; default 0 meaning
ungraded), `scorer` (exact, numeric, json or contains) and `meta` (an object). Without `scorer`,
a record of a registered family is scored by that family's scorer and any other by `exact`.
Unknown fields are errors, so a misspelt field never goes unnoticed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from evolora.errors import EvoloraError
from evolora.tasks.base import DIFFICULTIES, Example
from evolora.tasks.registry import is_family
from evolora.tasks.scorers import SCORERS

HF_PREFIX = "hf:"
DEFAULT_FAMILY = "dataset"
DEFAULT_HF_SPLIT = "train"
FIELDS = ("prompt", "answer", "family", "difficulty", "scorer", "meta")


def load_dataset(spec: str | Path) -> list[Example]:
    """Load examples from a JSONL file path or from `hf:NAME[:SPLIT]` (SPLIT defaults to train).

    NAME is a folder written by `datasets.Dataset.save_to_disk` / `DatasetDict.save_to_disk`, a
    folder of data files `datasets` can read, or a dataset already in the local Hugging Face
    cache; nothing is downloaded.
    """
    text = str(spec)
    if text.startswith(HF_PREFIX):
        return _load_hf(text)
    return _load_jsonl(Path(text))


def record_to_example(record: Any, where: str) -> Example:
    """Validate one dataset record and turn it into an Example; `where` names it in errors."""
    if not isinstance(record, Mapping):
        raise EvoloraError(f"{where}: expected a JSON object with 'prompt' and 'answer'.")
    unknown = [k for k in record if k not in FIELDS]
    if unknown:
        raise EvoloraError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; valid fields are "
            f"{', '.join(FIELDS)}."
        )
    prompt = record.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise EvoloraError(f"{where}: 'prompt' must be a non-empty string, got {prompt!r}.")
    answer = _answer_text(record.get("answer"), where)
    family = record.get("family") or DEFAULT_FAMILY
    if not isinstance(family, str):
        raise EvoloraError(f"{where}: 'family' must be a string, got {family!r}.")
    difficulty = record.get("difficulty")
    if difficulty is None:
        difficulty = 0
    elif isinstance(difficulty, bool) or difficulty not in DIFFICULTIES:
        valid = ", ".join(map(str, DIFFICULTIES))
        raise EvoloraError(f"{where}: 'difficulty' must be one of {valid}, got {difficulty!r}.")
    meta = record.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise EvoloraError(f"{where}: 'meta' must be a JSON object, got {meta!r}.")
    meta = dict(meta)
    scorer = record.get("scorer")
    if scorer is not None and scorer not in SCORERS:
        raise EvoloraError(
            f"{where}: unknown scorer {scorer!r}; valid scorers are {', '.join(SCORERS)}."
        )
    if scorer is not None or not is_family(family):
        meta["scorer"] = scorer or "exact"
    else:
        meta.pop("scorer", None)
    meta["source"] = where
    return Example(prompt, answer, family, int(difficulty), meta)


def _answer_text(answer: Any, where: str) -> str:
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str):
        raise EvoloraError(f"{where}: 'answer' must be a string or a number, got {answer!r}.")
    if "\n" in answer.strip():
        raise EvoloraError(
            f"{where}: 'answer' spans several lines; answers are one line because scorers "
            f"compare the completion's first line."
        )
    return answer.strip()


def _load_jsonl(path: Path) -> list[Example]:
    if not path.is_file():
        raise EvoloraError(
            f"Dataset file {path} does not exist; give a JSONL file or 'hf:NAME[:SPLIT]'."
        )
    examples = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as problem:
        raise EvoloraError(f"Dataset file {path} is not UTF-8 text ({problem.reason}).") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # blank lines separate nothing and hold nothing
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as problem:
            raise EvoloraError(f"{where}: not valid JSON ({_reason(problem)}).") from None
        examples.append(record_to_example(record, where))
    if not examples:
        raise EvoloraError(f"Dataset file {path} holds no records.")
    return examples


def _reason(problem: Exception) -> str:
    return getattr(problem, "msg", None) or str(problem) or type(problem).__name__


def _load_hf(spec: str) -> list[Example]:
    name, _, asked_split = spec[len(HF_PREFIX) :].partition(":")
    if not name:
        raise EvoloraError(f"Dataset spec {spec!r} names no dataset; write 'hf:NAME[:SPLIT]'.")
    split = asked_split or DEFAULT_HF_SPLIT
    import datasets

    from_disk = Path(name).is_dir() and _saved_to_disk(Path(name))
    with _offline(), _quiet_datasets():
        try:
            if from_disk:
                data = datasets.load_from_disk(name)
            else:
                data = datasets.load_dataset(name, split=split)
        except Exception as problem:  # datasets raises many types for "not available offline"
            raise EvoloraError(
                f"Dataset {name!r} could not be loaded from local files or the local Hugging Face "
                f"cache (nothing is downloaded): {_one_line(problem)}"
            ) from None
    if isinstance(data, datasets.DatasetDict):
        if split not in data:
            raise EvoloraError(
                f"Dataset {name!r} has no split {split!r}; its splits are {', '.join(data)}."
            )
        data = data[split]
    elif asked_split and from_disk:
        raise EvoloraError(
            f"Dataset {name!r} was saved as a single split; write 'hf:{name}' without ':{split}'."
        )
    examples = [record_to_example(row, f"{spec}, row {i + 1}") for i, row in enumerate(data)]
    if not examples:
        raise EvoloraError(f"Dataset {spec!r} holds no records.")
    return examples


def _saved_to_disk(folder: Path) -> bool:
    return any((folder / f).is_file() for f in ("dataset_dict.json", "state.json"))


def _one_line(problem: Exception) -> str:
    return " ".join(str(problem).split())[:300] or type(problem).__name__


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Hugging Face offline mode for the duration, whatever the environment says."""
    import datasets.config
    import huggingface_hub.constants

    saved = (
        huggingface_hub.constants.HF_HUB_OFFLINE,
        datasets.config.HF_HUB_OFFLINE,
        datasets.config.HF_DATASETS_OFFLINE,
    )
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
    try:
        yield
    finally:
        (
            huggingface_hub.constants.HF_HUB_OFFLINE,
            datasets.config.HF_HUB_OFFLINE,
            datasets.config.HF_DATASETS_OFFLINE,
        ) = saved


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No progress bars from `datasets` while loading (evolora shows its own)."""
    import datasets.utils.logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
