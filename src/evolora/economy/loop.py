"""The plain PyTorch training loop the economy steers (`train`), with its run folder and resume.

Each micro-batch: draw training examples by the current data mix (a function of seed, step and
mix), forward, backward (scaled by 1 / accumulation); when `accumulation` micro-batches are in,
`Steering` owns the optimizer step. A non-finite loss rolls back instead of crashing. Streams:
`steps` (every micro-batch; validation metrics on evaluation steps), `proposals`, `trades`,
`market`, `bursts`, `summary`. Checkpoints hold the LoRA factors, the best and burst snapshots,
the optimizer state, RNG states and the economy's JSON state, so `--resume` continues exactly.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import torch

from evolora.economy.adapters import lora_parameters
from evolora.economy.config import EconomyConfig
from evolora.economy.steering import Steering
from evolora.economy.workload import (
    TaskSource,
    encode,
    evaluate_loss,
    mean_loss,
    peft_model,
    task_accuracy,
)
from evolora.telemetry import Progress, RunDir


class Job:
    """One steered fine-tuning run: host + PEFT model + optimizer + steering (+ run folder)."""

    def __init__(self, config: EconomyConfig, run: RunDir | None = None, host=None) -> None:
        from evolora.hosts import load_host

        self.config = config
        self.run = run
        self.host = load_host(config.host, config.device) if host is None else host
        self.tokenizer = self.host.tokenizer
        self.device = self.host.device
        self.source = TaskSource(config.workload.task, config.seed)
        # PEFT wraps a model in place, so a host handed in keeps its own model untouched.
        base = self.host.model if host is None else copy.deepcopy(self.host.model)
        self.model = peft_model(base, config.workload, config.seed)
        self.optimizer = torch.optim.AdamW(lora_parameters(self.model), lr=config.knobs.lr)
        self.steering = Steering(
            config, self.model, self.optimizer, self.source, self.tokenizer, self._sink
        )
        self.micro = 0
        self.accumulated = 0
        self.started = time.perf_counter()
        self.elapsed = 0.0
        if run is not None and run.latest_checkpoint() is not None:
            self._restore()

    def _sink(self, stream: str, record: dict) -> None:
        if self.run is not None:
            self.run.stream(stream).append(record)

    # -- training ------------------------------------------------------------------------------

    def step(self) -> dict:
        """One micro-batch (and the optimizer step when accumulation is complete)."""
        knobs = self.steering.knobs
        work = self.config.workload
        examples = self.source.train_batch(self.micro, work.batch_size, knobs.mix)
        loss = mean_loss(self.model, encode(self.tokenizer, examples, self.device))
        record: dict = {"step": self.micro + 1, "loss": loss.item()}
        if not math.isfinite(record["loss"]):
            self.optimizer.zero_grad(set_to_none=True)
            self.accumulated = 0
            self.steering.on_nan(self.micro + 1)
            record["nan_rollback"] = True
        else:
            (loss / knobs.accumulation).backward()
            self.accumulated += 1
            if self.accumulated >= knobs.accumulation:
                record["grad_norm"] = self.steering.before_optimizer_step()
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.accumulated = 0
                record["acted"] = len(self.steering.after_optimizer_step(self.micro + 1))
        self.micro += 1
        record.update(self.steering.after_micro(self.micro))
        record.update({k: v for k, v in knobs.state().items()})
        self._sink("steps", record)
        if self.micro % work.checkpoint_every == 0:
            self.checkpoint()
        return record

    def train(self, stop_after: int | None = None, progress: Progress | None = None) -> None:
        """Run micro-batches until the budget (or `stop_after` micro-batches, for tests)."""
        end = self.config.workload.steps if stop_after is None else stop_after
        while self.micro < min(end, self.config.workload.steps):
            record = self.step()
            if progress is not None:
                progress.advance(summary=_summary(record, self.steering))

    def finish(self, accuracy: bool = True) -> dict:
        """Final validation (on the best weights if they beat the last) and task accuracy."""
        steering = self.steering
        steering.flush()
        final = evaluate_loss(self.model, steering.val)
        if steering.economy.anxiety.best < final["val_loss"]:
            steering.rollback(steering.best)
            final = evaluate_loss(self.model, steering.val)
        if accuracy:
            tests = self.source.test_examples(self.config.workload.test_per_cell)
            final["task_accuracy"] = task_accuracy(
                self.model, self.tokenizer, tests, self.config.workload.max_new_tokens
            )
        final.update(
            steps=self.micro,
            optimizer_steps=steering.opt_steps,
            rounds=steering.economy.round,
            landed_lr=steering.economy.search.landed,
            final_lr=steering.knobs.lr,
            wall_seconds=self.elapsed + time.perf_counter() - self.started,
        )
        self._sink("summary", final)
        return final

    # -- checkpoints ---------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Save everything needed to continue exactly from this micro-batch."""
        if self.run is None:
            return
        state, tensors = self.steering.state()
        for index, entry in self.optimizer.state_dict()["state"].items():
            for key, value in entry.items():
                tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().clone()
        for index, param in enumerate(lora_parameters(self.model)):
            if param.grad is not None:  # a checkpoint inside an accumulation window
                tensors[f"grad.{index}"] = param.grad.detach().clone()
        tensors["rng.torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        state.update(
            micro=self.micro,
            accumulated=self.accumulated,
            wall_seconds=self.elapsed + time.perf_counter() - self.started,
        )
        self.run.save_checkpoint(self.micro, tensors, state)

    def _restore(self) -> None:
        checkpoint = self.run.load_checkpoint(device=self.device)
        tensors = checkpoint.tensors
        self.steering.load_state(checkpoint.state, tensors)
        optim: dict[int, dict[str, torch.Tensor]] = {}
        for name, value in tensors.items():
            if name.startswith("optim."):
                _, index, key = name.split(".", 2)
                optim.setdefault(int(index), {})[key] = value
        groups = self.optimizer.state_dict()["param_groups"]
        self.optimizer.load_state_dict({"state": optim, "param_groups": groups})
        self.steering.sync()
        torch.set_rng_state(tensors["rng.torch"].cpu())
        if "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), self.device)
        for index, param in enumerate(lora_parameters(self.model)):
            param.grad = tensors.get(f"grad.{index}")
        self.micro = checkpoint.state["micro"]
        self.accumulated = checkpoint.state["accumulated"]
        self.elapsed = checkpoint.state["wall_seconds"]


def _summary(record: dict, steering: Steering) -> dict:
    eco = steering.economy
    out = {
        "loss": record["loss"],
        "lr": steering.knobs.lr,
        "rank": steering.knobs.rank,
        "anxiety": eco.anxiety.level,
    }
    if "val_loss" in record:
        out["val"] = record["val_loss"]
    return out


def run_economy(
    config: EconomyConfig,
    run: RunDir | None = None,
    host=None,
    progress_factory: Callable[[int], Progress] | None = None,
    accuracy: bool = True,
) -> dict:
    """Train a steered job to its budget and return the final metrics."""
    job = Job(config, run, host)
    if progress_factory is None:
        job.train()
    else:
        with progress_factory(config.workload.steps) as progress:
            progress.advance(job.micro)
            job.train(progress=progress)
    return job.finish(accuracy)
