"""Under transformers.Trainer with an LR scheduler, the economy owns the hyperparameters."""

from __future__ import annotations

import copy

import pytest
import torch
from economy_helpers import tiny_config
from transformers import Trainer, TrainerCallback, TrainingArguments

from evolora.economy.adapters import active_rank, lora_slots
from evolora.economy.callback import EconomyCallback
from evolora.economy.config import Role
from evolora.economy.workload import TaskSource, encode, peft_model

FORCED = {
    Role.LR: 1.234e-3,
    Role.WEIGHT_DECAY: 0.05,
    Role.DROPOUT: 0.25,
    Role.GRAD_CLIP: 0.06,
    Role.RANK: 6,
}


class Recorder(TrainerCallback):
    """The lr / weight decay the optimizer stepped with and the gradient norm it saw."""

    def __init__(self) -> None:
        self.steps: list[dict] = []

    def on_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
        grads = [p.grad.norm() for p in model.parameters() if p.grad is not None]
        group = optimizer.param_groups[0]
        self.steps.append(
            {
                "lr": group["lr"],
                "wd": group["weight_decay"],
                "norm": float(torch.linalg.vector_norm(torch.stack(grads))),
                "dropout": lora_slots(model)[0].dropout.p,
                "rank": active_rank(model),
            }
        )


class Forcer(TrainerCallback):
    """At the end of step 2, applies one proposal of every Trainer-steered kind."""

    def __init__(self, economy: EconomyCallback) -> None:
        self.economy = economy

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 2:
            steering = self.economy.steering
            steering.apply(
                [
                    steering.economy.apply(
                        role, value, 2, role.value, knob="lr" if role is Role.LR else None
                    )
                    for role, value in FORCED.items()
                ]
            )


def _trainer(host, tmp_path, callbacks):
    # gain 0: the lr holds between proposals (test_hypergradient.py covers the moving lr)
    config = tiny_config(
        agents={"decide_every": 1000}, workload={"eval_every": 1000}, knobs={"lr_gain": 0.0}
    )
    model = peft_model(copy.deepcopy(host.model), config.workload, config.seed)
    source = TaskSource(config.workload.task, config.seed)
    examples = source.sample(__import__("numpy").random.default_rng(0), 40, "train")

    def collate(batch):
        return vars(encode(host.tokenizer, batch, host.device))

    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=5,
        per_device_train_batch_size=4,
        learning_rate=5e-3,
        lr_scheduler_type="linear",
        warmup_steps=3,
        max_grad_norm=1.0,
        weight_decay=0.0,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=collate)
    economy = EconomyCallback(config, host.tokenizer)
    recorder = Recorder()
    for callback in callbacks(economy):
        trainer.add_callback(callback)
    trainer.add_callback(recorder)
    return trainer, config, recorder


def test_the_scheduler_cannot_overwrite_what_the_economy_owns(host, tmp_path):
    trainer, config, recorder = _trainer(host, tmp_path, lambda economy: [economy, Forcer(economy)])
    trainer.train()
    first, later = recorder.steps[:2], recorder.steps[2:]
    for step in first:  # the economy's starting lr, not the scheduler's warm-up value
        assert step["lr"] == pytest.approx(config.knobs.lr)
    for step in later:  # every forced proposal holds from the next step on
        assert step["lr"] == pytest.approx(FORCED[Role.LR])
        assert step["wd"] == pytest.approx(FORCED[Role.WEIGHT_DECAY])
        assert step["norm"] <= FORCED[Role.GRAD_CLIP] * (1 + 1e-4)
        assert step["dropout"] == FORCED[Role.DROPOUT]
        assert step["rank"] == FORCED[Role.RANK]
    assert trainer.lr_scheduler.get_last_lr()[0] != pytest.approx(FORCED[Role.LR])


def test_without_the_callback_the_scheduler_sets_the_lr(host, tmp_path):
    trainer, config, recorder = _trainer(host, tmp_path, lambda economy: [])
    trainer.train()
    lrs = [step["lr"] for step in recorder.steps]
    # linear warm-up from 0 over 3 steps: this is what the economy replaces
    assert lrs[:3] == pytest.approx([0.0, 5e-3 / 3, 2 * 5e-3 / 3])
    assert all(lr != pytest.approx(config.knobs.lr) for lr in lrs)
