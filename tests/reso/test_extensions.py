import math

import torch
from reso_helpers import tiny, tokenizer, tokens

from evolora.reso.inference import ResoEngine
from evolora.reso.kuramoto import KuramotoSync
from evolora.reso.prsc import coherence, compose
from evolora.reso.resonance import repeated_bigrams


def test_kuramoto_coupling_synchronises_the_phases():
    x = torch.zeros(1, 20, 8)
    theta0 = torch.linspace(0, 2 * math.pi * 0.9, 20)[None]
    valid = torch.ones(1, 20, dtype=torch.bool)
    orders = []
    for coupling in (0.0, 4.0):
        sync = KuramotoSync(8, steps=8, coupling=coupling, dt=0.5)
        with torch.no_grad():
            theta, _, _ = sync(x, theta0, valid, None)
        orders.append(float(torch.exp(1j * theta.double()).mean().abs()))
    assert orders[1] > orders[0] + 0.3


def test_prsc_coherence_and_interference():
    u = torch.randn(16)
    assert abs(float(coherence(u, u)) - 1) < 1e-4
    assert abs(float(coherence(u, 3 * u)) - 1) < 1e-4
    opposite = compose(u, -u)
    assert float(opposite.norm()) < 1e-6  # destructive interference


def test_a_bound_concept_changes_the_output_of_coherent_tokens():
    model = tiny()
    x = tokens(batch=1)
    with torch.no_grad():
        before = model(x).logits
        model.bind_concept("echo", int(x[0, 5]))
        after = model(x).logits
    assert model.config.prsc_binding_names == ["echo"]
    assert not torch.allclose(before, after, atol=1e-6)


def test_repeated_bigrams_are_detected_only_after_they_repeat():
    ids = torch.tensor([[5, 6, 7, 5, 6, 9]])
    rho = repeated_bigrams(ids, torch.ones_like(ids), window=8)
    assert rho.tolist() == [[0, 0, 0, 0, 1, 0]]


def test_memory_writes_change_the_output_and_decay():
    model = tiny()
    engine = ResoEngine(model, tokenizer())
    x = tokens(batch=1)
    with torch.no_grad():
        before = model(x).logits
        engine.update_memory("The king is dead; long live the king.", importance=1.0)
        after = model(x).logits
    assert not torch.allclose(before, after, atol=1e-6)
    memory = model.model.memory
    first = memory.persistent_field().clone()
    engine.update_memory("Another moment.", importance=0.0)  # only the clock moves
    assert memory.persistent_field().norm() < first.norm()


def test_episodic_tagging_changes_what_is_read():
    x = tokens(batch=1, length=16)
    x[0, 8] = 1  # a <bos>: a new episode starts
    outs = []
    for episodic in (True, False):
        model = tiny(temporal_smf={"episodic_tagging": episodic, "episode_carry": 0.0})
        model.config.episode_boundary_ids = [1]
        with torch.no_grad():
            outs.append(model(x).logits)
    assert torch.allclose(outs[0][0, :8], outs[1][0, :8], atol=1e-6)
    assert not torch.allclose(outs[0][0, 9:], outs[1][0, 9:], atol=1e-6)


def test_a_goal_biases_generation_and_its_progress_is_measured():
    model = tiny()
    engine = ResoEngine(model, tokenizer())
    x = tokens(batch=1)
    with torch.no_grad():
        before = model(x).logits
        engine.create_goal("the crown of England")
        after = model(x).logits
    assert not torch.allclose(before, after, atol=1e-6)
    result = engine.generate("ROMEO:", max_new_tokens=6)
    assert 0.0 <= result.goal_progress["the crown of England"] <= 1.0
    assert len(result.attention_summary) == model.config.agency["max_foci"]


def test_resonant_attention_adds_exactly_its_stated_score_terms():
    from evolora.reso.attention import ResonantAttention, apply_rope, rope_tables
    from evolora.reso.model import ForwardContext
    from evolora.reso.primes import PHI

    torch.manual_seed(0)
    b, t, d, nh = 2, 7, 16, 2
    hs = d // nh
    attn = ResonantAttention(d, nh, 0, 0.7, resonance=True, agency=True).eval()
    x, phase, sal = torch.randn(b, t, d), torch.rand(b, t) * 6, torch.rand(b, t)
    rope = rope_tables(torch.arange(t)[None].expand(b, t), hs, 10000.0)
    ctx = ForwardContext(rope, None, None, phase, sal, None, None)
    with torch.no_grad():
        q = apply_rope(attn.q_proj(x).view(b, t, nh, hs).transpose(1, 2), *rope)
        k = apply_rope(attn.k_proj(x).view(b, t, nh, hs).transpose(1, 2), *rope)
        v = attn.v_proj(x).view(b, t, nh, hs).transpose(1, 2)
        beta = (0.7 * PHI ** -torch.arange(nh).float() * attn.phase_gain)[None, :, None, None]
        gamma = attn.goal_gain[None, :, None, None]
        scores = (q @ k.transpose(-1, -2) / math.sqrt(hs)
                  + beta * torch.cos(phase[:, None, :, None] - phase[:, None, None, :])
                  + gamma * sal[:, None, None, :])
        scores = scores.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        assert torch.allclose(attn(x, ctx), attn.o_proj(y), atol=1e-5)


def test_the_vectorised_bigram_detector_matches_a_direct_search():
    g = torch.Generator().manual_seed(3)
    for _ in range(30):
        ids = torch.randint(0, 4, (2, 20), generator=g)
        valid = torch.rand(2, 20, generator=g) > 0.2
        window = int(torch.randint(1, 10, (1,), generator=g))
        expected = torch.zeros(2, 20)
        for b in range(2):
            for t in range(1, 20):
                for s in range(max(1, t - window), t):
                    pair = (t - 1, t, s - 1, s)
                    if all(valid[b, i] for i in pair) and ids[b, t - 1] == ids[b, s - 1] and (
                            ids[b, t] == ids[b, s]):
                        expected[b, t] = 1.0
        assert torch.equal(repeated_bigrams(ids, valid, window), expected)


def test_decoding_keeps_goal_keys_only_while_weights_and_goals_are_unchanged():
    model = tiny()
    engine = ResoEngine(model, tokenizer())
    x = tokens(batch=1)
    with torch.no_grad():
        model(x)
        engine.create_goal("the crown")
        with_goal = model(x).logits
        model.model.agency.query.weight.normal_(0.0, 1.0)
        changed = model(x).logits
    fresh = tiny()
    fresh.load_state_dict(model.state_dict())
    ResoEngine(fresh, tokenizer()).create_goal("the crown")
    with torch.no_grad():
        assert torch.allclose(changed, fresh(x).logits, atol=1e-6)
    assert not torch.allclose(with_goal, changed, atol=1e-6)


def test_the_last_tokens_bigrams_need_only_window_plus_one_earlier_tokens():
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 5, (2, 80), generator=g)
    valid = torch.ones_like(ids)
    valid[0, :7] = 0
    window, t = 8, 3
    keep = t + window + 1
    full = repeated_bigrams(ids, valid, window)[:, -t:]
    assert torch.equal(repeated_bigrams(ids[:, -keep:], valid[:, -keep:], window)[:, -t:], full)
    assert full.sum() > 0


def test_row_std_is_torch_std():
    from evolora.reso.resonance import row_std

    x = torch.randn(7, 33) * 3 + 1
    assert torch.allclose(row_std(x), x.std(dim=-1, keepdim=True), rtol=1e-5)
