"""The factors a route keeps between calls follow every change of the population, and a bf16
host's base product cast inline equals the one its hooks compute."""

from __future__ import annotations

import pytest
import torch

from evolora.hosts.precision import bf16_copies, run_in

# Adapter subsets out of order (the kept factors are copies) and all adapters in order (views).
LAYOUTS = {"subset": [3, 3, 1, 1, 2, 2], "identity": [0, 0, 1, 1, 2, 3]}


def _fresh_route(model, population, tokens, ids) -> torch.Tensor:
    """Logits under a new `route`: nothing kept from an earlier one can be used."""
    with torch.no_grad(), population.route(ids):
        return model(tokens).logits


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_in_place_changes_inside_a_route_are_seen(model, population, tokens, layout):
    ids = LAYOUTS[layout]
    name = population.layer_names[0]
    with torch.no_grad(), population.route(ids):
        before = model(tokens).logits
        population.A[name][ids[0]] += 0.5  # e.g. an ES update between two evaluations
        population.B[name][ids[2]] *= -1
        after = model(tokens).logits
    assert (after - before).abs().max() > 1e-2  # the change matters...
    expected = _fresh_route(model, population, tokens, ids)
    assert (after - expected).abs().max() < 1e-6  # ...and the kept factors followed it


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_tables_replaced_inside_a_route_are_seen(model, population, tokens, layout):
    ids = LAYOUTS[layout]
    name = population.layer_names[-1]
    with torch.no_grad(), population.route(ids):
        before = model(tokens).logits
        population.B[name] = population.B[name] * 3  # a new tensor, the old one untouched
        after = model(tokens).logits
    assert (after - before).abs().max() > 1e-2
    assert (after - _fresh_route(model, population, tokens, ids)).abs().max() < 1e-6


def test_bf16_base_cast_inline_equals_the_hooks(model, twin, population, tokens):
    with torch.no_grad(), population.route([-1] * len(tokens)):
        with run_in(model, "bf16"), run_in(twin, "bf16"):
            layer = model.model.layers[0].self_attn.q_proj
            assert bf16_copies(layer.base) is not None  # the inline cast is used
            ours, hooked = model(tokens).logits, twin(tokens).logits
        assert bf16_copies(layer.base) is None  # the block ended: no copies left
    assert torch.equal(ours, hooked)
