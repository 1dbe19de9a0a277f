"""BraidedLLM: fused states are fed back, cached generation equals uncached, save/load is exact."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from evolora.braid.braided import BRAID_FILE, BraidedLLM
from evolora.braid.fusion import strategy_names
from evolora.braid.generation import generate
from evolora.braid.plan import BraidSpec, Plan
from evolora.errors import EvoloraError
from evolora.hosts.generation import encode, left_pad

PROMPTS = ["math: 3+4=", "logic: T and F =", "math: 12-7*2="]


def _randomise(braid: BraidedLLM, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in braid.banks.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)


def _inputs(pool, prompts=PROMPTS):
    return left_pad(encode(pool.tokenizer, prompts, special=True), pool.tokenizer.pad_token_id,
                    pool.device)


def _plan(pool, spec, rows=len(PROMPTS)):
    return Plan.repeat(spec, rows, pool.names, pool.depth)


def _layer_outputs(braid, pool, plan, layer):
    """Output of decoder layer `layer` of every model during one braided forward."""
    seen = {}
    hooks = [s.inner.layers[layer].register_forward_hook(
        lambda _m, _i, out, k=k: seen.__setitem__(k, (out[0] if isinstance(out, tuple) else out)))
        for k, s in enumerate(braid.stacks)]
    try:
        braid(*_inputs(pool), plan)
    finally:
        for h in hooks:
            h.remove()
    return seen


@pytest.mark.parametrize("strategy", ["learned_weighted", "attention", "router"])
def test_fused_state_changes_every_models_later_layers(pool, strategy):
    braid = BraidedLLM(pool)
    _randomise(braid)
    plan = _plan(pool, BraidSpec(tuple(pool.names), (0,), strategy, top_k=2))
    before = _layer_outputs(braid, pool, plan, 1)
    with torch.no_grad():
        for p in braid.banks[strategy].mixer.parameters():
            p.add_(torch.randn_like(p))  # a different fused state at layer 0
    after = _layer_outputs(braid, pool, plan, 1)
    for m in range(pool.size):
        assert not torch.allclose(before[m], after[m]), f"model {m} never saw the fused state"
    # With the feedback gates shut the models run alone: the change no longer reaches them.
    with torch.no_grad():
        braid.banks[strategy].feedback.fill_(-1e4)
    shut = _layer_outputs(braid, pool, plan, 1)
    alone = _layer_outputs(braid, pool, _plan(pool, BraidSpec(tuple(pool.names), (), strategy)), 1)
    for m in range(pool.size):
        torch.testing.assert_close(shut[m], alone[m])


def test_one_model_braid_is_that_model(pool):
    braid = BraidedLLM(pool)
    _randomise(braid)
    ids, mask, pos = _inputs(pool)
    for strategy in strategy_names():
        plan = _plan(pool, BraidSpec((pool.names[1],), (0, 1), strategy))
        got = braid(ids, mask, pos, plan)
        want = torch.log_softmax(pool.hosts[1].model(
            input_ids=ids, attention_mask=mask, position_ids=pos).logits.float(), dim=-1)
        torch.testing.assert_close(got[mask.bool()], want[mask.bool()], atol=1e-4, rtol=1e-4)


def test_an_untrained_join_starts_at_its_lead(pool):
    """Every bank starts out weighting the lead (the spec's first model): a router keeping one
    model runs the lead exactly, and a learned weighting gives it most of the output."""
    braid = BraidedLLM(pool)
    ids, mask, pos = _inputs(pool)
    lead, other = pool.names[1], pool.names[0]
    alone = braid(ids, mask, pos, _plan(pool, BraidSpec((lead,))))
    routed = braid(ids, mask, pos, _plan(pool, BraidSpec((lead, other), (0, 1), "router",
                                                          top_k=1)))
    torch.testing.assert_close(routed[mask.bool()], alone[mask.bool()], atol=1e-5, rtol=1e-5)
    swapped = braid(ids, mask, pos, _plan(pool, BraidSpec((other, lead), (0, 1), "router",
                                                           top_k=1)))
    assert not torch.allclose(swapped[mask.bool()], alone[mask.bool()])
    plan = _plan(pool, BraidSpec((lead, other), (), "learned_weighted"))
    states = torch.zeros(len(PROMPTS), 1, pool.size, braid.dim)
    weights = braid.banks["learned_weighted"].mixer.mix(
        states, plan.models, braid.slots, plan.temperature, plan.top_k, plan.lead)[:, 0, 0]
    assert torch.allclose(weights[:, 1], torch.full((len(PROMPTS),), 0.88), atol=0.01)
    assert torch.allclose(weights[:, 2], torch.zeros(len(PROMPTS)))


@pytest.mark.parametrize("strategy", strategy_names())
def test_cached_generation_equals_uncached(pool, strategy):
    braid = BraidedLLM(pool)
    _randomise(braid, 1)
    plan = _plan(pool, BraidSpec(tuple(pool.names), (0, 1), strategy, 0.7, 2))
    cached = generate(braid, PROMPTS, plan, max_new_tokens=12, use_cache=True)
    fresh = generate(braid, PROMPTS, plan, max_new_tokens=12, use_cache=False)
    assert cached == fresh
    assert any(cached)


def test_mixed_rows_match_rows_run_alone(pool):
    braid = BraidedLLM(pool)
    _randomise(braid, 2)
    specs = [BraidSpec(tuple(pool.names), (0,), "attention"),
             BraidSpec(tuple(pool.names[:2]), (1,), "router", top_k=1),
             BraidSpec((pool.names[2],), (), "product_of_experts")]
    ids, mask, pos = _inputs(pool)
    mixed = braid(ids, mask, pos, Plan.from_specs(specs, pool.names, pool.depth))
    for row, spec in enumerate(specs):
        alone = braid(ids[row:row + 1], mask[row:row + 1], pos[row:row + 1],
                      _plan(pool, spec, 1))
        torch.testing.assert_close(mixed[row:row + 1], alone, atol=1e-5, rtol=1e-5)


def test_each_model_runs_only_on_the_rows_that_pick_it(pool):
    """A model no row picks never runs; the others see only their own rows, and cached
    generation over such a plan still equals uncached."""
    braid = BraidedLLM(pool)
    _randomise(braid, 3)
    a, b, c = pool.names
    specs = [BraidSpec((a, b), (0,), "attention"), BraidSpec((b,)),
             BraidSpec((c, a), (1,), "learned_weighted")]
    plan = Plan.from_specs(specs, pool.names, pool.depth)
    seen = _layer_outputs(braid, pool, plan, 0)
    assert {m: out.shape[0] for m, out in seen.items()} == {0: 2, 1: 2, 2: 1}
    assert set(_layer_outputs(braid, pool, _plan(pool, BraidSpec((b,))), 0)) == {1}
    cached = generate(braid, PROMPTS, plan, max_new_tokens=12, use_cache=True)
    assert cached == generate(braid, PROMPTS, plan, max_new_tokens=12, use_cache=False)


def test_save_load_round_trip_is_exact(pool, tmp_path):
    braid = BraidedLLM(pool)
    _randomise(braid, 3)
    braid.save(tmp_path / "braid")
    again = BraidedLLM.load(tmp_path / "braid", pool)
    ids, mask, pos = _inputs(pool)
    for strategy in strategy_names():
        plan = _plan(pool, BraidSpec(tuple(pool.names), (0, 1), strategy))
        assert torch.equal(braid(ids, mask, pos, plan), again(ids, mask, pos, plan))


def test_a_braid_saved_without_lead_scores_is_refused(pool, tmp_path):
    folder = BraidedLLM(pool).save(tmp_path / "braid")
    meta = json.loads((folder / BRAID_FILE).read_text())
    (folder / BRAID_FILE).write_text(json.dumps({**meta, "version": 1}))
    with pytest.raises(EvoloraError, match="format version 1"):
        BraidedLLM.load(folder, pool)


def test_bad_specs_are_one_sentence(pool):
    with pytest.raises(EvoloraError, match="Unknown fusion strategy"):
        BraidSpec(tuple(pool.names), (0,), "blend").check(pool.names, pool.depth)
    with pytest.raises(EvoloraError, match="beyond the models' depth"):
        BraidSpec(tuple(pool.names), (2,), "router").check(pool.names, pool.depth)
    with pytest.raises(EvoloraError, match="at least one model"):
        BraidSpec((), (0,)).check(pool.names, pool.depth)


def test_greedy_check_agrees_with_generation(pool):
    from evolora.braid.generation import greedy_correct, greedy_matches

    braid = BraidedLLM(pool)
    plan = _plan(pool, BraidSpec(tuple(pool.names), (0,), "router", top_k=1))
    made = generate(braid, PROMPTS, plan, max_new_tokens=6)
    # A random model also emits partial UTF-8 bytes, which do not re-encode to the same tokens:
    # keep each completion's printable-ASCII prefix, which does.
    clean = ["".join(itertools.takewhile(lambda c: 32 <= ord(c) < 127, m)) for m in made]
    rows = [i for i, c in enumerate(clean) if c]
    assert rows
    prompts, clean = [PROMPTS[i] for i in rows], [clean[i] for i in rows]
    sub = Plan.repeat(BraidSpec(tuple(pool.names), (0,), "router", top_k=1), len(rows),
                      pool.names, pool.depth)
    assert greedy_matches(braid, prompts, clean, sub).tolist() == [1.0] * len(rows)
    changed = [c + "~~" for c in clean]
    assert greedy_matches(braid, prompts, changed, sub).tolist() == [0.0] * len(rows)
    assert greedy_correct(braid, prompts, changed, sub).tolist() == [0.0] * len(rows)
