"""`EconomyCallback`: the economy steering a `transformers.Trainer` run of a PEFT LoRA model.

The Trainer's LR scheduler writes its own learning rate into the optimizer after every step, and
the Trainer clips gradients at `args.max_grad_norm`. The callback makes the economy the owner:
at `on_train_begin` it switches the Trainer's clipping off (`args.max_grad_norm = 0`), and at
`on_pre_optimizer_step` — after anything the scheduler or the Trainer wrote, right before
`optimizer.step()` — it writes the economy's lr and weight decay into the LoRA param groups,
clips at the economy's value and masks inactive rank slots. Dropout and rank proposals change the
model when they are made. Under the Trainer the economy steers lr, weight decay, dropout, grad
clip and rank; accumulation and the data mix are fixed by the Trainer's arguments and dataset, so
those roles act only in the plain loop (loop.py).
"""

from __future__ import annotations

from transformers import TrainerCallback

from evolora.economy.config import EconomyConfig, Role
from evolora.economy.steering import Sink, Steering
from evolora.economy.workload import TaskSource

TRAINER_ROLES = (Role.LR, Role.WEIGHT_DECAY, Role.DROPOUT, Role.GRAD_CLIP, Role.RANK)


class EconomyCallback(TrainerCallback):
    """Lets the economy own lr, weight decay, dropout, grad clip and rank of a Trainer run."""

    def __init__(self, config: EconomyConfig, tokenizer, sink: Sink | None = None) -> None:
        roles = [r for r in config.agents.roles if r in TRAINER_ROLES]
        self.config = config.model_copy(
            update={"agents": config.agents.model_copy(update={"roles": roles})}
        )
        self.tokenizer = tokenizer
        self.sink = sink
        self.source = TaskSource(config.workload.task, config.seed)
        self.steering: Steering | None = None

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        """Build the steering on the Trainer's model and optimizer; take over gradient clipping."""
        self.steering = Steering(
            self.config, model, optimizer, self.source, self.tokenizer, self.sink
        )
        args.max_grad_norm = 0.0

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        """Write the economy's hyperparameters over whatever the scheduler set; clip; mask."""
        self.steering.before_optimizer_step(optimizer)

    def on_step_end(self, args, state, control, **kwargs):
        """Decision rounds, validation, anxiety and bursts on the economy's schedule."""
        self.steering.after_optimizer_step(state.global_step)
        self.steering.after_micro(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        """Log the proposals still waiting for credit."""
        self.steering.flush()
