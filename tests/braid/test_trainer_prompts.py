"""The braider's reward prompts and the evaluation prompts: disjoint shares of the holdout split;
the leave-one-out baseline of a prompt's samples; the lead's annealed entropy bonus."""

from __future__ import annotations

import numpy as np
import torch

from evolora.braid.config import TrainConfig
from evolora.braid.reinforce import leave_one_out
from evolora.braid.trainer import evaluation_prompts, lead_entropy, role_prompts
from evolora.ecology.roles import Role
from evolora.tasks import TaskGrid
from evolora.tasks.splits import split_of


def test_reward_and_evaluation_prompts_are_disjoint_holdout_shares():
    grid = TaskGrid(["math", "sorting"], [1, 2])
    select = role_prompts(grid, np.random.default_rng(0), 60, Role.select, 0.4)
    evaluate = evaluation_prompts(grid, 10, 0, 0.4)
    assert len(select) == 60 and len(evaluate) >= 30
    assert all(split_of(e) == "holdout" for e in select + evaluate)
    assert not {e.prompt for e in select} & {e.prompt for e in evaluate}
    assert len({e.prompt for e in evaluate}) == len(evaluate)  # distinct prompts


def test_role_prompts_follow_cell_weights():
    grid = TaskGrid(["math", "sorting"], [1])
    picked = role_prompts(grid, np.random.default_rng(1), 20, Role.select, 0.4, [0.0, 1.0])
    assert {e.family for e in picked} == {"sorting"}


def test_leave_one_out_is_the_mean_of_the_other_samples():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    expected = torch.tensor([1 / 3, 2 / 3, 2 / 3, 1 / 3, 1.0, 1.0, 1.0, 1.0])
    torch.testing.assert_close(leave_one_out(rewards, 4), expected)


def test_lead_entropy_bonus_anneals_to_zero():
    config = TrainConfig(lead_entropy=0.1, lead_entropy_until=0.5)
    assert lead_entropy(config, 0.0) == 0.1
    assert abs(lead_entropy(config, 0.25) - 0.05) < 1e-12
    assert lead_entropy(config, 0.5) == 0.0 and lead_entropy(config, 0.9) == 0.0
