"""Every kind of proposal reaches the optimizer, the model or the data stream at the next step
of the plain loop; panic, NaN rollback and bursts act on the weights."""

from __future__ import annotations

import math

import pytest
import torch
from economy_helpers import tiny_config

from evolora.economy import steering as steering_module
from evolora.economy.adapters import active_rank, lora_slots, lora_state
from evolora.economy.bursts import BurstOutcome, burst, undo, verdict
from evolora.economy.config import Role
from evolora.economy.loop import Job


def _job(host, **overrides) -> Job:
    config = tiny_config(agents={"decide_every": 1000}, **overrides)  # no rounds of their own
    return Job(config, host=host)


def _force(job: Job, role: Role, value, knob: str | None = None) -> None:
    steering = job.steering
    steering.apply([steering.economy.apply(role, value, job.micro, role.value, knob=knob)])


class StepSpy:
    """Records the param groups and the gradient norm at every optimizer.step()."""

    def __init__(self, job: Job) -> None:
        self.calls: list[dict] = []
        self.job = job
        original = job.optimizer.step

        def step(*args, **kwargs):
            grads = [p.grad for p in job.steering.params if p.grad is not None]
            norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
            group = job.optimizer.param_groups[0]
            self.calls.append({"lr": group["lr"], "wd": group["weight_decay"], "norm": norm})
            return original(*args, **kwargs)

        job.optimizer.step = step


def test_lr_weight_decay_and_clip_proposals_reach_the_next_optimizer_step(host):
    job = _job(host)
    spy = StepSpy(job)
    job.step()
    assert spy.calls[-1]["lr"] == pytest.approx(job.config.knobs.lr)
    _force(job, Role.LR, 3.3e-3, knob="lr")
    _force(job, Role.WEIGHT_DECAY, 0.07)
    _force(job, Role.GRAD_CLIP, 0.06)
    record = job.step()
    assert spy.calls[-1]["lr"] == pytest.approx(3.3e-3)
    assert spy.calls[-1]["wd"] == pytest.approx(0.07)
    assert record["grad_norm"] > 0.06  # the clip was active, and held the step to its value
    assert spy.calls[-1]["norm"] == pytest.approx(0.06, rel=1e-4)


def test_dropout_and_rank_proposals_change_the_model(host):
    job = _job(host)
    job.step()
    assert active_rank(job.model) == 4
    factors = lora_state(job.model)
    moments = len(job.optimizer.state)
    _force(job, Role.DROPOUT, 0.3)
    _force(job, Role.RANK, 6)
    assert {slot.dropout.p for slot in lora_slots(job.model)} == {0.3}
    grown = lora_state(job.model)  # growing keeps the active factors and their moments
    assert all(torch.equal(grown[k][:4], factors[k][:4]) for k in factors if k.endswith(".A"))
    assert all(torch.equal(grown[k], factors[k]) for k in factors if k.endswith(".B"))
    assert all(grown[k][4:6].abs().sum() > 0 for k in factors if k.endswith(".A"))
    assert len(job.optimizer.state) == moments > 0
    job.step()
    assert active_rank(job.model) == 6
    _force(job, Role.RANK, 2)
    before = {s.name: (s.B @ s.A).detach().clone() for s in lora_slots(job.model)}
    assert active_rank(job.model) == 2
    for slot in lora_slots(job.model):  # pruning keeps the best rank-2 part of each update
        U, S, Vh = torch.linalg.svd(before[slot.name], full_matrices=False)
        best_rank_2 = U[:, :2] @ torch.diag(S[:2]) @ Vh[:2]
        assert torch.allclose(slot.B @ slot.A, best_rank_2, atol=1e-6)
    job.step()
    assert active_rank(job.model) == 2


def test_a_prune_restarts_the_moments_warm(host):
    job = _job(host)
    for _ in range(3):
        job.step()
    old = {id(p): dict(job.optimizer.state[p]) for p in job.steering.params}
    means = {k: float(v["exp_avg_sq"].mean()) for k, v in old.items()}
    steps = {k: float(v["step"]) for k, v in old.items()}
    _force(job, Role.RANK, 2)  # re-factors ΔW: the old moments describe other factors
    for p in job.steering.params:
        state = job.optimizer.state[p]
        assert not state["exp_avg"].any() and float(state["step"]) == steps[id(p)]
        assert torch.allclose(state["exp_avg_sq"], torch.full_like(p, means[id(p)]))
    before = {k: v.clone() for k, v in lora_state(job.model).items()}
    job.step()
    after = lora_state(job.model)
    moved = torch.cat([(after[k] - v).abs().flatten() for k, v in before.items()])
    moved = moved[moved > 0]
    # an emptied Adam state would move every coordinate by the full lr (a sign step)
    assert moved.numel() > 0 and float(moved.mean()) < 0.5 * job.steering.knobs.lr


def test_accumulation_and_data_mix_proposals_change_the_next_steps(host, monkeypatch):
    job = _job(host)
    spy = StepSpy(job)
    mixes = []
    original = job.source.train_batch
    monkeypatch.setattr(
        job.source,
        "train_batch",
        lambda step, n, mix: mixes.append(list(mix)) or original(step, n, mix),
    )
    job.step()
    _force(job, Role.ACCUMULATION, 2)
    _force(job, Role.DATA_MIX, [0.8, 0.05, 0.05, 0.05, 0.05])
    job.step()
    assert len(spy.calls) == 1  # the first micro-batch of two: no optimizer step yet
    job.step()
    assert len(spy.calls) == 2
    assert mixes[0] == pytest.approx([0.2] * 5)
    assert mixes[1] == pytest.approx([0.8, 0.05, 0.05, 0.05, 0.05])
    batch = job.source.train_batch(99, 200, mixes[1])
    share = sum(job.source.group_of(ex) == job.source.groups[0] for ex in batch) / len(batch)
    assert share > 0.6


def test_a_nan_loss_rolls_back_instead_of_crashing(host):
    job = _job(host)
    job.step()
    best = {k: v.clone() for k, v in job.steering.best.items()}
    lr = job.steering.knobs.lr
    with torch.no_grad():
        lora_slots(job.model)[0].B.fill_(float("nan"))
    record = job.step()
    assert record["nan_rollback"] and not math.isfinite(record["loss"])
    assert job.steering.knobs.lr == pytest.approx(lr * job.config.anxiety.lr_backoff)
    for key, value in lora_state(job.model).items():
        assert torch.equal(value, best[key])
    assert math.isfinite(job.step()["loss"])


def test_panic_backs_the_lr_off_and_rolls_back_to_the_best_weights(host):
    job = _job(host)
    for _ in range(2):
        job.step()
    steering = job.steering
    metrics = steering.validate(job.micro)  # first validation: the best so far
    best = lora_state(job.model)
    with torch.no_grad():
        for slot in lora_slots(job.model):
            slot.B.add_(0.5)  # damage the weights: validation regresses
    steering.economy.anxiety.level = 5.0
    lr = steering.knobs.lr
    event = steering.validate(job.micro)
    assert event["panic"] and event["rollback"] and event["val_loss"] > metrics["val_loss"]
    assert steering.knobs.lr == pytest.approx(lr * job.config.anxiety.lr_backoff)
    assert job.optimizer.param_groups[0]["lr"] == pytest.approx(steering.knobs.lr)
    for key, value in lora_state(job.model).items():
        assert torch.equal(value, best[key])
    assert steering.economy.boost_rounds == job.config.anxiety.explore_rounds


def _trained(host) -> Job:
    job = _job(host)
    for _ in range(3):
        job.step()
    return job


def test_a_burst_moves_only_the_top_singular_direction(host):
    job = _trained(host)
    slot = lora_slots(job.model)[0]
    before = (slot.scale * slot.B @ slot.A).detach().clone()
    A = slot.A.detach().clone()
    U, S, _ = torch.linalg.svd(before)
    change, _ = burst(
        job.model, rank=4, top_k=1, scale=0.5, generator=torch.Generator().manual_seed(1)
    )
    after = (slot.scale * slot.B @ slot.A).detach()
    assert change > 0
    values = torch.linalg.svdvals(after)[:4]
    for sigma in S[1:4]:  # the other singular values are untouched
        assert (values - sigma).abs().min() < 1e-5 * float(S[0])
    diff = after - before  # a rank-1 change along the top left singular vector
    Ud, Sd, _ = torch.linalg.svd(diff)
    assert float(Sd[1]) < 1e-4 * float(Sd[0])
    assert abs(float(Ud[:, 0] @ U[:, 0])) == pytest.approx(1.0, abs=1e-4)
    assert torch.equal(slot.A.detach(), A)  # the factors keep their parametrisation


def test_undo_inverts_a_burst_and_keeps_what_was_learned_after_it(host):
    job = _trained(host)
    slot = lora_slots(job.model)[0]
    before = slot.B.detach().clone()
    _, maps = burst(
        job.model, rank=4, top_k=2, scale=0.5, generator=torch.Generator().manual_seed(3)
    )
    assert not torch.allclose(slot.B.detach(), before)
    Uk = maps[f"{slot.name}.U"]
    learned = torch.randn(before.shape, generator=torch.Generator().manual_seed(4))
    learned -= Uk @ (Uk.T @ learned)  # outside the burst's directions: M⁻¹ leaves it as it is
    with torch.no_grad():
        slot.B += learned
    undo(job.model, maps)
    assert torch.allclose(slot.B.detach(), before + learned, atol=1e-6)


def test_the_burst_verdict_by_hand():
    assert verdict(0.40, 0.50, 0.60) is BurstOutcome.KEPT
    assert verdict(0.50, 0.40, 0.60) is BurstOutcome.UNDONE
    assert verdict(0.50, 0.50, 0.60) is BurstOutcome.UNDONE  # a burst that changed nothing goes
    assert verdict(0.50, 0.60, 0.45) is BurstOutcome.RESTORED
    assert verdict(0.40, 0.50, 0.30) is BurstOutcome.RESTORED


@pytest.mark.parametrize(
    "burst_loss, undone_loss, reference, outcome",
    [(0.4, 0.5, 0.6, "kept"), (0.5, 0.4, 0.6, "undone"), (0.5, 0.6, 0.45, "restored")],
)
def test_a_judged_burst_leaves_the_candidate_with_the_lowest_validation(
    host, monkeypatch, burst_loss, undone_loss, reference, outcome
):
    job = _trained(host)
    steering = job.steering
    snapshot = lora_state(job.model)
    steering.start_burst(job.micro, reference)
    with torch.no_grad():  # the window's training
        for slot in lora_slots(job.model):
            slot.B += 1e-3 * torch.randn(slot.B.shape, generator=torch.Generator().manual_seed(5))
    trained, maps = lora_state(job.model), dict(steering.burst_maps)
    losses = iter([burst_loss, undone_loss])
    monkeypatch.setattr(
        steering_module, "evaluate_loss", lambda model, val: {"val_loss": next(losses)}
    )
    logged = []
    steering.sink = lambda stream, record: logged.append((stream, record))
    result = steering.judge_burst(job.micro)
    assert result == {"burst_kept": outcome == "kept", "burst_outcome": outcome}
    assert logged[-1][0] == "bursts" and logged[-1][1]["outcome"] == outcome
    final = lora_state(job.model)
    if outcome == "kept":
        assert all(torch.equal(final[k], trained[k]) for k in trained)
    elif outcome == "restored":
        assert all(torch.equal(final[k], snapshot[k]) for k in snapshot)
    else:  # the window's training stays; only the burst's directions of B moved back
        for slot in lora_slots(job.model):
            moved = final[f"{slot.name}.B"] - trained[f"{slot.name}.B"]
            Uk = maps[f"{slot.name}.U"]
            assert moved.abs().max() > 0
            assert torch.allclose(moved - Uk @ (Uk.T @ moved), torch.zeros_like(moved), atol=1e-6)
            assert torch.equal(final[f"{slot.name}.A"], trained[f"{slot.name}.A"])
        assert any(not torch.equal(final[k], snapshot[k]) for k in snapshot)
    assert steering.burst is None and steering.burst_maps is None
