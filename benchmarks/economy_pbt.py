"""Ray Tune Population Based Training (Jaderberg et al. 2017) of the learning rate, the baseline
of `economy_vs_schedules.py`: 4 members train the same PEFT LoRA job as the fixed schedules, each
at its own constant lr (drawn log-uniformly in the grid's range); every `eval_every`
micro-batches each reports its validation loss, and Ray Tune's `PopulationBasedTraining`
scheduler makes the bottom quarter copy the top quarter's checkpoint (LoRA factors, optimizer
state, best weights) and perturb its lr (x 0.8 / 1.2, or resample with probability 0.25).
The result is the member with the lowest final validation loss; its compute is 4 runs.

Needs the `ray` extra (`pip install -e ".[ray]"`, which brings `ray[tune]` >= 2.41).
"""

from __future__ import annotations

import copy
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np

MEMBERS = 4


def member(params: dict) -> None:
    """One PBT member: trains in `eval_every` chunks at `params['lr']`, reporting and
    checkpointing after each chunk (its run folder is the checkpoint)."""
    import torch
    from ray import tune

    from evolora.economy.config import EconomyConfig
    from evolora.economy.loop import Job
    from evolora.economy.workload import evaluate_loss
    from evolora.hosts import load_host
    from evolora.telemetry import RunDir

    torch.set_num_threads(1)
    config = EconomyConfig.model_validate(params["economy"])
    work = Path(tempfile.mkdtemp(prefix="member-", dir=params["scratch"]))
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        run = RunDir.create(work, config, name="pbt")
    else:
        with checkpoint.as_directory() as folder:
            shutil.copytree(folder, work / "run")
        run = RunDir.open(work / "run")
    job = Job(config, run=run, host=load_host("builtin"))
    steps, chunk = config.workload.steps, config.workload.eval_every
    while job.micro < steps:
        for _ in range(min(chunk, steps - job.micro)):
            job.steering.knobs.lr = params["lr"]
            job.step()
        job.checkpoint()
        metrics = {"val_loss": evaluate_loss(job.model, job.steering.val)["val_loss"]}
        metrics.update(lr=params["lr"], micro=job.micro)
        if job.micro >= steps:
            final = job.finish()
            metrics.update(final_val_loss=final["val_loss"], task_accuracy=final["task_accuracy"])
        run.close()
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(run.path)))


def run_pbt(economy: dict, low: float, high: float) -> dict:
    """PBT of the lr in [low, high] over 4 members of the fixed-schedule job `economy` (a config
    dict with no agents); the best member's final metrics plus the lr path of each member."""
    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    seed = economy["seed"]
    random.seed(seed)  # PBT's exploit / explore draws use the driver's `random`
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=1,
        hyperparam_mutations={"lr": tune.loguniform(low, high)},
        quantile_fraction=0.25,
        resample_probability=0.25,
        synch=True,
    )
    rng = np.random.default_rng([seed, 29])
    starts = [float(x) for x in np.exp(rng.uniform(np.log(low), np.log(high), MEMBERS))]
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 2**20,
        log_to_driver=False,
        ignore_reinit_error=True,
    )
    storage = tempfile.mkdtemp(prefix="pbt-")
    try:
        tuner = tune.Tuner(
            tune.with_resources(member, {"cpu": 0.5}),
            param_space={
                "economy": copy.deepcopy(economy),
                "scratch": storage,
                "lr": tune.grid_search(starts),
            },
            tune_config=tune.TuneConfig(
                metric="val_loss", mode="min", scheduler=scheduler, reuse_actors=False
            ),
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        )
        grid = tuner.fit()
        finals = [r.metrics for r in grid if r.metrics and "final_val_loss" in r.metrics]
        if len(finals) < MEMBERS:
            errors = [str(r.error) for r in grid if r.error]
            raise RuntimeError(f"PBT: {MEMBERS - len(finals)} members failed: {errors[:1]}")
        best = min(finals, key=lambda m: m["final_val_loss"])
        return {
            "val_loss": best["final_val_loss"],
            "task_accuracy": best["task_accuracy"],
            "final_lrs": sorted(m["lr"] for m in finals),
            "start_lrs": starts,
        }
    finally:
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)
