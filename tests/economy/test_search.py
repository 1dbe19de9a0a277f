"""The lr agent's opening search: its verdicts by hand, and in a steered job the lr it sets, the
round it undoes (LoRA factors and optimizer moments), the market waiting for its end, and resume."""

from __future__ import annotations

import math

import pytest
import torch
from economy_helpers import tiny_config

from evolora.economy import steering as steering_module
from evolora.economy.adapters import lora_state
from evolora.economy.loop import Job
from evolora.economy.search import LrSearch, Verdict, judge, next_lr, ties
from evolora.telemetry import RunDir


def test_verdicts_by_hand():
    search = LrSearch()
    rounds = [(1.0, 1e-3), (0.9, 2e-3), (0.95, 4e-3), (0.85, 4e-3), (0.9, 8e-3), (0.86, 8e-3)]
    verdicts = [judge(search, loss, lr, patience=2) for loss, lr in rounds]
    assert verdicts == [
        Verdict.START,
        Verdict.CLIMB,
        Verdict.HOLD,
        Verdict.CLIMB,  # compared with the last kept round (0.9), not with the hold
        Verdict.HOLD,
        Verdict.RETREAT,
    ]
    assert not search.active and search.last_loss == 0.85 and search.rounds == 6
    assert search.kept_lr == 4e-3  # the rate of the last round in which the loss fell
    assert judge(LrSearch(last_loss=1.0), math.nan, 1e-3, patience=1) is Verdict.RETREAT
    assert next_lr(Verdict.CLIMB, 1e-3, 5e-4, 2.0, 4.0) == pytest.approx(2e-3)
    assert next_lr(Verdict.HOLD, 1e-3, 5e-4, 2.0, 4.0) == 1e-3
    assert next_lr(Verdict.RETREAT, 8e-3, 4e-3, 2.0, 1.0) == pytest.approx(4e-3)
    assert next_lr(Verdict.RETREAT, 8e-3, 4e-3, 2.0, 4.0) == pytest.approx(1e-3)


class Script:
    """Validation log-losses the search rounds of registered jobs see, by search round (so a
    resumed job reads on where it stopped); every other evaluation is real."""

    def __init__(self, monkeypatch, losses: list[float]) -> None:
        self.losses, self.jobs = losses, []
        real = steering_module.evaluate_loss

        def evaluate(model, chunks):
            out = real(model, chunks)
            for job in self.jobs:
                if chunks is job.steering.val and job.steering.economy.search.active:
                    out["val_loss"] = math.exp(losses[job.steering.economy.search.rounds])
            return out

        monkeypatch.setattr(steering_module, "evaluate_loss", evaluate)

    def job(self, config, **kwargs) -> Job:
        """A job whose search reads the script."""
        job = Job(config, **kwargs)
        self.jobs.append(job)
        return job


def test_the_search_climbs_holds_and_undoes_its_last_rounds(host, monkeypatch):
    config = tiny_config(
        workload={"eval_every": 1000},
        agents={"roles": ["lr", "dropout"], "decide_every": 3},
        search={"enabled": True, "every": 1, "factor": 2.0, "retreat": 1.0, "patience": 2},
    )
    job = Script(monkeypatch, [1.0, 0.9, 0.95, 0.97]).job(config, host=host)
    lr0, opt = config.knobs.lr, job.optimizer
    seen = []
    original = opt.step

    def step(*args, **kwargs):
        seen.append(opt.param_groups[0]["lr"])
        return original(*args, **kwargs)

    opt.step = step
    job.step()  # start: lr x 2
    job.step()  # 0.9 < 1.0, climb: lr x 2; this round is the one kept
    kept = lora_state(job.model)
    moments = {k: v.clone() for k, v in opt.state[job.steering.params[0]].items()}
    job.step()  # 0.95: hold
    job.step()  # 0.97: second miss, retreat to the kept round and the rate it fell with
    assert seen == pytest.approx([lr0, 2 * lr0, 4 * lr0, 4 * lr0])
    assert job.steering.knobs.lr == pytest.approx(2 * lr0)
    assert not job.steering.economy.search.active
    assert job.steering.economy.search.landed == pytest.approx(2 * lr0)  # reported by finish()
    now = lora_state(job.model)
    assert all(torch.equal(kept[k], now[k]) for k in kept)
    restored = opt.state[job.steering.params[0]]
    assert all(torch.equal(moments[k], restored[k]) for k in moments)
    assert job.steering.economy.round == 0  # the market waited for the search to end
    for _ in range(3):
        job.step()
    assert job.steering.economy.round == 1


def test_without_the_lr_agent_there_is_no_search(host):
    config = tiny_config(agents={"roles": ["dropout"]}, search={"enabled": True, "every": 1})
    job = Job(config, host=host)
    job.step()
    assert not job.steering.economy.search.active
    assert job.steering.knobs.lr == config.knobs.lr


def test_a_run_killed_during_the_search_resumes_exactly(host, monkeypatch, tmp_path):
    config = tiny_config(
        workload={"steps": 10, "checkpoint_every": 3, "eval_every": 1000},
        agents={"roles": ["lr", "dropout"]},
        search={"enabled": True, "every": 1, "patience": 1},
    )
    script = Script(monkeypatch, [1.0, 0.9, 0.8, 0.7, 0.75])  # the retreat comes after the kill
    whole = script.job(config, run=RunDir.create(tmp_path / "a", config), host=host)
    whole.train()
    broken = RunDir.create(tmp_path / "b", config)
    script.job(config, run=broken, host=host).train(stop_after=3)
    resumed = script.job(config, run=RunDir.open(broken.path), host=host)
    assert resumed.steering.search_snapshot is not None
    resumed.train()
    a, b = lora_state(whole.model), lora_state(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert whole.steering.economy.state() == resumed.steering.economy.state()
    assert whole.run.read_stream("proposals") == resumed.run.read_stream("proposals")
    verdicts = [p.get("verdict") for p in whole.run.read_stream("proposals")]
    assert verdicts[:5] == ["start", "climb", "climb", "climb", "retreat"]


def test_a_missed_round_within_the_tie_keeps_its_training(host, monkeypatch, tmp_path):
    assert ties(LrSearch(last_loss=0.9), 0.9015, 0.002)
    assert not ties(LrSearch(last_loss=0.9), 0.9025, 0.002)
    assert not ties(LrSearch(last_loss=0.9), 0.9, 0.0)  # 0: every miss is undone
    config = tiny_config(
        workload={"eval_every": 1000},
        agents={"roles": ["lr", "dropout"], "decide_every": 3},
        search={"enabled": True, "every": 1, "patience": 2, "tie": 0.002},
    )
    run = RunDir.create(tmp_path / "tie", config)
    job = Script(monkeypatch, [1.0, 0.9, 0.901, 0.97]).job(config, run=run, host=host)
    job.step()
    job.step()  # climb: kept
    job.step()  # 0.901 ties 0.9: a hold whose training is kept
    tied = lora_state(job.model)
    job.step()  # 0.97: retreat, back to the tied round rather than the kept one
    now = lora_state(job.model)
    assert all(torch.equal(tied[k], now[k]) for k in tied)
    assert job.steering.knobs.lr == pytest.approx(2 * config.knobs.lr)  # the kept round's rate
    records = [r for r in job.run.read_stream("proposals") if "verdict" in r]
    assert [r["tied"] for r in records] == [False, False, True, False]


def test_a_retreat_that_ties_is_not_undone(host, monkeypatch):
    config = tiny_config(
        workload={"eval_every": 1000},
        agents={"roles": ["lr", "dropout"], "decide_every": 3},
        search={"enabled": True, "every": 1, "patience": 2, "tie": 0.002},
    )
    job = Script(monkeypatch, [1.0, 0.9, 0.95, 0.901]).job(config, host=host)
    for _ in range(3):
        job.step()
    original = job.optimizer.step
    trained = {}

    def step(*args, **kwargs):
        out = original(*args, **kwargs)
        trained.update(lora_state(job.model))
        return out

    job.optimizer.step = step
    job.step()  # 0.901 ties the kept 0.9: the search ends on the weights as trained
    assert not job.steering.economy.search.active
    now = lora_state(job.model)
    assert all(torch.equal(trained[k], now[k]) for k in trained)
