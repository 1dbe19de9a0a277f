"""The lr agent's cool-down: proposed once the budget's last fraction starts, applied at the next
optimizer step, held there, logged and credited; off without the lr agent or when disabled."""

from __future__ import annotations

import pytest
from economy_helpers import StepSpy, tiny_config

from evolora.economy.loop import Job


def _job(host, **cooldown) -> Job:
    config = tiny_config(
        workload={"steps": 10, "eval_every": 1000},
        agents={"roles": ["lr", "dropout"], "decide_every": 1000},  # no rounds of their own
        knobs={"lr_evidence": 0.0},  # the hypergradient moves the lr at every step
        cooldown={"fraction": 0.2, "factor": 0.3, **cooldown},
    )
    return Job(config, host=host)


def test_the_cooldown_lowers_the_lr_at_the_next_step_and_holds_it(host):
    job = _job(host)
    spy = StepSpy(job)
    records = [job.step() for _ in range(7)]
    assert not any(r.get("cooldown") for r in records)
    assert len({round(c["lr"], 12) for c in spy.calls}) > 2  # the hypergradient moved the lr
    assert job.step().get("cooldown")  # 8 of 10 micro-batches: the last 20 % starts
    proposal = job.steering.economy.pending[-1]
    assert (proposal.agent, proposal.knob) == ("lr", "lr")
    before = proposal.before
    assert before == pytest.approx(spy.calls[-1]["lr"], rel=0.2)  # the lr of step 8 (give or
    # take that step's own hypergradient move)
    assert proposal.applied == pytest.approx(0.3 * before)
    job.step()
    job.step()
    assert [c["lr"] for c in spy.calls[-2:]] == pytest.approx([0.3 * before] * 2)
    economy = job.steering.economy
    tokens = economy.agents["lr"].tokens
    economy.probe, economy.probe_at = [0.9, 0.8], [2, 5]  # a falling trend to credit against
    settled = economy.settle(0.6, job.micro)["proposals"]  # credited like any proposal
    assert settled == [proposal]
    assert proposal.credit == pytest.approx(0.8 - 0.5 * 0.1 / 3 * 5 - 0.6)
    assert proposal.paid > 0
    assert economy.agents["lr"].tokens == pytest.approx(tokens + proposal.paid)


def test_no_cooldown_when_disabled_or_without_the_lr_agent(host):
    job = _job(host, enabled=False)
    spy = StepSpy(job)
    for _ in range(10):
        assert not job.step().get("cooldown")
    assert spy.calls[-1]["lr"] > 0.5 * spy.calls[7]["lr"]
    config = tiny_config(workload={"steps": 10}, agents={"roles": ["dropout"]})
    job = Job(config, host=host)
    assert not any(job.step().get("cooldown") for _ in range(10))
    assert job.steering.knobs.lr == config.knobs.lr
