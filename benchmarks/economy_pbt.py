"""Ray Tune Population Based Training (Jaderberg et al. 2017) of the learning rate, the baseline
of `economy_vs_schedules.py`: 4 members train the same PEFT LoRA job as the fixed schedules, each
at its own constant lr (drawn log-uniformly in the grid's range); every `eval_every`
micro-batches each reports its validation loss, and Ray Tune's `PopulationBasedTraining`
scheduler makes the bottom quarter copy the top quarter's checkpoint (LoRA factors, optimizer
state, best weights) and perturb its lr (x 0.8 / 1.2, or resample with probability 0.25).
The result is the member with the lowest final validation loss; its compute is 4 runs.

Needs the `ray` extra (`pip install -e ".[ray]"`, which brings `ray[tune]` >= 2.41). When Ray
cannot start (its raylet must register within 30 s, which a heavily loaded machine can miss),
`run_pbt` falls back to `local_pbt`: the same synchronous PBT in one process (same members, start
rates, interval, truncation quantile and perturbations), and says so in the result's `engine`.
"""

from __future__ import annotations

import copy
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np

MEMBERS = 4
QUANTILE = 0.25
RESAMPLE = 0.25
FACTORS = (0.8, 1.2)  # Ray Tune PBT's default perturbation factors


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


def start_rates(seed: int, low: float, high: float) -> list[float]:
    """The members' starting lrs, log-uniform in [low, high], from the seed."""
    rng = np.random.default_rng([seed, 29])
    return [float(x) for x in np.exp(rng.uniform(np.log(low), np.log(high), MEMBERS))]


def local_pbt(economy: dict, low: float, high: float) -> dict:
    """The same synchronous PBT without Ray: after every `eval_every` chunk the worst quarter
    copies the best quarter's checkpoint and perturbs its lr (resampled with probability 0.25,
    else x 0.8 or x 1.2, kept in [low, high])."""
    from evolora.economy.config import EconomyConfig
    from evolora.economy.loop import Job
    from evolora.economy.workload import evaluate_loss
    from evolora.hosts import load_host
    from evolora.telemetry import RunDir

    config = EconomyConfig.model_validate(economy)
    rng = np.random.default_rng([config.seed, 31])
    host = load_host("builtin")
    lrs = start_rates(config.seed, low, high)
    root = Path(tempfile.mkdtemp(prefix="pbt-local-"))
    try:
        runs = [RunDir.create(root / f"member{i}", config, name="pbt") for i in range(MEMBERS)]
        jobs = [Job(config, run, host) for run in runs]
        steps, chunk = config.workload.steps, config.workload.eval_every
        while jobs[0].micro < steps:
            for job, lr in zip(jobs, lrs, strict=True):
                for _ in range(min(chunk, steps - job.micro)):
                    job.steering.knobs.lr = lr
                    job.step()
                job.checkpoint()
            if jobs[0].micro >= steps:
                break
            vals = [evaluate_loss(job.model, job.steering.val)["val_loss"] for job in jobs]
            order = np.argsort(vals)
            cut = max(1, int(QUANTILE * MEMBERS))
            for top, bottom in zip(order[:cut], order[-cut:], strict=True):
                shutil.rmtree(runs[bottom].checkpoint_dir)
                shutil.copytree(runs[top].checkpoint_dir, runs[bottom].checkpoint_dir)
                jobs[bottom] = Job(config, RunDir.open(runs[bottom].path), host)
                if rng.random() < RESAMPLE:
                    lrs[bottom] = float(np.exp(rng.uniform(np.log(low), np.log(high))))
                else:
                    lrs[bottom] = float(np.clip(lrs[top] * rng.choice(FACTORS), low, high))
        finals = [job.finish() for job in jobs]
        best = min(range(MEMBERS), key=lambda i: finals[i]["val_loss"])
        return {
            "val_loss": finals[best]["val_loss"],
            "task_accuracy": finals[best]["task_accuracy"],
            "final_lrs": sorted(lrs),
            "start_lrs": start_rates(config.seed, low, high),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


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
        quantile_fraction=QUANTILE,
        resample_probability=RESAMPLE,
        perturbation_factors=FACTORS,
        synch=True,
    )
    starts = start_rates(seed, low, high)
    try:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=200 * 2**20,
            log_to_driver=False,
            ignore_reinit_error=True,
        )
    except Exception as problem:  # any start-up failure means: no Ray on this machine now
        ray.shutdown()
        result = local_pbt(economy, low, high)
        result["engine"] = f"local PBT (Ray Tune did not start: {str(problem)[:80]})"
        return result
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
            "engine": f"Ray Tune {ray.__version__}",
        }
    finally:
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)
