"""Reading a run's streams as a user should: each generation once, from its latest attempt.

A resumed run repeats the generation that was in flight when it stopped, and its JSONL streams
keep the records of both attempts (told apart by the `attempt` field). `read_stream` returns only
the records of each generation's latest attempt, so a pandas user never double-counts:

    from evolora.telemetry import read_stream
    frame = pandas.DataFrame(read_stream("runs/ecology-20250101-120000", "gen_summaries"))
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evolora.errors import EvoloraError
from evolora.telemetry.jsonl import read_jsonl


def latest_attempt(records: Iterable[dict], among: Iterable[Iterable[dict]] = ()) -> list[dict]:
    """The records of each generation's latest attempt only, in generation order.

    The latest attempt of a generation is the highest `attempt` seen for it in `records` or in any
    stream of `among` (the run's other streams), so a stale record is dropped even when the rerun
    wrote nothing to this stream. Records without a `generation` are kept as they are.
    """
    records = list(records)
    latest: dict[int, int] = {}
    for record in [*records, *(r for stream in among for r in stream)]:
        if isinstance(record, dict) and "generation" in record:
            g = record["generation"]
            latest[g] = max(latest.get(g, 0), record.get("attempt", 0))
    kept = [
        r
        for r in records
        if not isinstance(r, dict)
        or "generation" not in r
        or r.get("attempt", 0) == latest[r["generation"]]
    ]
    return sorted(kept, key=lambda r: r.get("generation", -1) if isinstance(r, dict) else -1)


def read_stream(run: str | Path, name: str) -> list[Any]:
    """The records of stream `name` of the run folder `run`, each generation once (its latest
    attempt, judged across all the run's streams); an empty list when the stream is absent."""
    folder = Path(run)
    if not folder.is_dir():
        raise EvoloraError(f"Run folder '{folder}' does not exist.")
    path = folder / f"{name}.jsonl"
    if not path.is_file():
        return []
    others = [read_jsonl(p) for p in sorted(folder.glob("*.jsonl")) if p != path]
    return latest_attempt(read_jsonl(path), others)
