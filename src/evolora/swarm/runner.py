"""A swarm run in a run folder: trials.jsonl (every trial), teams.jsonl (every reassignment,
shrink, clone, retirement, reallocation, re-seed and periodic status, each with its reason),
checkpoints, and `--resume`.

Resume replays: the swarm is deterministic given its seed, the values it was told and how its
asks and tells interleaved (each record keeps `asked`, the trials asked when it was told), so a
resumed run rebuilds it from config.yaml and tells it the recorded trials in their original
order, each after the same asks (checking each re-asked point against the record). Trials that
were asked but not finished when the run was killed are evaluated now; no finished trial is
repeated or lost. Checkpoints record the trial count and the swarm's status at that point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from evolora.errors import EvoloraError
from evolora.swarm.config import RunConfig
from evolora.swarm.execution import Evaluator
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
    if swarm_cfg.horizon is None:  # the hierarchy paces itself to the run's length
        swarm_cfg = swarm_cfg.model_copy(update={"horizon": cfg.trials})
    if objective.space is not None:  # shipped objectives know whether they are minimised
        swarm_cfg = swarm_cfg.model_copy(update={"direction": objective.direction})
    if swarm_cfg.fidelity.enabled and not objective.budgeted:
        raise EvoloraError(
            f"swarm.fidelity.enabled needs an objective that takes a budget; '{cfg.objective}' "
            "does not (lora-sft does)."
        )
    fidelity = swarm_cfg.fidelity
    if fidelity.enabled and fidelity.refine_share > 0 and fidelity.refine_above is None:
        floor = objective.baseline()  # refine only around configurations that learnt something
        if floor is not None:
            fidelity = fidelity.model_copy(update={"refine_above": floor})
            swarm_cfg = swarm_cfg.model_copy(update={"fidelity": fidelity})
    return Swarm(space, swarm_cfg), objective


def replay(swarm: Swarm, records: list[dict]) -> list[Any]:
    """Tell `swarm` the recorded trials in the order they were told, each after as many asks as
    had been made then; return the trials asked but left unfinished (to be evaluated now)."""
    for record in records:
        while len(swarm.trials) < record["asked"]:
            swarm.ask()
        trial = swarm.trials[record["trial"]] if record["trial"] < len(swarm.trials) else None
        if trial is None or not np.allclose(trial.u, record["u"], atol=1e-5):
            raise EvoloraError(
                f"Cannot resume: trial {record['trial']} in trials.jsonl does not match what "
                "the swarm proposes again (was the config or the code changed?)."
            )
        swarm.tell(trial, record["value"], record["error"])
    return [trial for trial in swarm.trials if trial.state == "pending"]


def run(
    cfg: RunConfig,
    rundir: RunDir,
    resume: bool = False,
    on_batch: Callable[[Swarm], None] | None = None,
) -> Swarm:
    """Run (or resume) the search until `cfg.trials` trials are finished, `cfg.workers` at once
    (asynchronously: a new trial is asked as soon as one finishes)."""
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
        pending = replay(swarm, records)
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
    since_checkpoint = [0]

    def record(trial: Any) -> None:
        trials.append(trial.record())
        for event in swarm.events:
            teams.append({"trial": len(swarm.trials), **event})
        swarm.events.clear()
        since_checkpoint[0] += 1
        if since_checkpoint[0] >= cfg.checkpoint_every:
            _checkpoint(rundir, swarm)
            since_checkpoint[0] = 0
        if on_batch is not None:
            on_batch(swarm)

    with Evaluator(objective, cfg.executor, cfg.workers) as evaluator:
        for trial in pending:
            evaluator.submit(trial)
        swarm.drive(evaluator, cfg.trials, record)
    _checkpoint(rundir, swarm)
    return swarm


def _checkpoint(rundir: RunDir, swarm: Swarm) -> None:
    step = len(swarm.trials)
    if rundir.latest_checkpoint() is not None and (
        rundir.load_checkpoint().state["trials"] >= step
    ):
        return
    rundir.save_checkpoint(step, {}, {"trials": step, **swarm.status()})
