"""A swarm run in a run folder: trials.jsonl (every trial), teams.jsonl (every reassignment,
shrink, clone, retirement, reallocation, re-seed and periodic status, each with its reason),
checkpoints, and `--resume`.

Resume replays: the swarm is deterministic given its seed and the values it was told, so a
resumed run rebuilds it from config.yaml and tells it the recorded trials, batch by batch, in
their original order (checking each re-asked point against the record). Trials that were asked
but not finished when the run was killed are asked again and evaluated; no finished trial is
repeated or lost. Checkpoints record the trial count and the swarm's status at that point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from evolora.errors import EvoloraError
from evolora.swarm.config import RunConfig
from evolora.swarm.execution import evaluate_batch
from evolora.swarm.objectives import Objective, load_objective
from evolora.swarm.study import Swarm
from evolora.telemetry import RunDir


def build(cfg: RunConfig) -> tuple[Swarm, Objective]:
    """The swarm and objective a run config describes."""
    objective = load_objective(cfg.objective)
    space = cfg.space or objective.space
    if space is None:
        raise EvoloraError(
            f"Objective '{cfg.objective}' ships no search space; give one under 'space' in the "
            "config file."
        )
    swarm_cfg = cfg.swarm
    if objective.space is not None:  # shipped objectives know whether they are minimised
        swarm_cfg = swarm_cfg.model_copy(update={"direction": objective.direction})
    if swarm_cfg.fidelity.enabled and not objective.budgeted:
        raise EvoloraError(
            f"swarm.fidelity.enabled needs an objective that takes a budget; '{cfg.objective}' "
            "does not (lora-sft does)."
        )
    return Swarm(space, swarm_cfg), objective


def replay(swarm: Swarm, records: list[dict], workers: int) -> list[Any]:
    """Tell `swarm` the recorded trials in their original batches; return the trials asked but
    left unfinished (to be evaluated now)."""
    position = 0
    while position < len(records):
        batch = [swarm.ask() for _ in range(workers)]
        known = records[position : position + workers]
        for trial, record in zip(batch, known, strict=False):
            if record["trial"] != trial.number or not np.allclose(trial.u, record["u"], atol=1e-5):
                raise EvoloraError(
                    f"Cannot resume: trial {record['trial']} in trials.jsonl does not match what "
                    "the swarm proposes again (was the config or the code changed?)."
                )
            swarm.tell(trial, record["value"], record["error"])
        position += len(known)
        if len(known) < len(batch):
            return batch[len(known) :]
    return []


def run(
    cfg: RunConfig,
    rundir: RunDir,
    resume: bool = False,
    on_batch: Callable[[Swarm], None] | None = None,
) -> Swarm:
    """Run (or resume) the search until `cfg.trials` trials are finished."""
    swarm, objective = build(cfg)
    pending: list[Any] = []
    if resume:
        records = rundir.read_stream("trials")
        checkpoint = rundir.latest_checkpoint()
        if checkpoint is not None:
            done = rundir.load_checkpoint(checkpoint).state["trials"]
            if done > len(records):
                raise EvoloraError(
                    f"Cannot resume '{rundir.path}': its checkpoint counts {done} trials but "
                    f"trials.jsonl holds only {len(records)}."
                )
        pending = replay(swarm, records, cfg.workers)
        swarm.events.clear()  # already in teams.jsonl
    trials, teams = rundir.stream("trials"), rundir.stream("teams")
    if not resume:
        teams.append(
            {
                "trial": 0,
                "event": "start",
                "team": None,
                "reason": "run started",
                "direction": swarm.config.direction,
                "space": swarm.space.to_dict(),
            }
        )
    executor = None
    if cfg.executor != "local" and cfg.workers > 1:
        from evolora.execution import get_executor

        options = {"workers": cfg.workers} if cfg.executor == "process" else {}
        executor = get_executor(cfg.executor, **options)
    try:
        since_checkpoint = 0
        while pending or len(swarm.trials) < cfg.trials:
            room = cfg.trials - len(swarm.trials)
            batch = pending or [swarm.ask() for _ in range(min(cfg.workers, room))]
            pending = []
            for trial, (value, error) in zip(
                batch, evaluate_batch(objective, batch, executor), strict=True
            ):
                swarm.tell(trial, value, error)
                trials.append(trial.record())
            for event in swarm.events:
                teams.append({"trial": len(swarm.trials), **event})
            swarm.events.clear()
            since_checkpoint += len(batch)
            if since_checkpoint >= cfg.checkpoint_every:
                _checkpoint(rundir, swarm)
                since_checkpoint = 0
            if on_batch is not None:
                on_batch(swarm)
        _checkpoint(rundir, swarm)
    finally:
        if executor is not None:
            executor.close()
    return swarm


def _checkpoint(rundir: RunDir, swarm: Swarm) -> None:
    step = len(swarm.trials)
    if rundir.latest_checkpoint() is not None and (
        rundir.load_checkpoint().state["trials"] >= step
    ):
        return
    rundir.save_checkpoint(step, {}, {"trials": step, **swarm.status()})
