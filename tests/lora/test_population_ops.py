"""Population operations: clone, mutate, keep/remove, add, get/set/reset, checkpoints."""

from __future__ import annotations

import pytest
import torch
from lora_models import tiny_llama

from evolora.errors import EvoloraError
from evolora.lora import LoRAPopulation


def member_equal(pop, i, tensors) -> bool:
    return all(torch.equal(pop.A[k][i], a) and torch.equal(pop.B[k][i], b)
               for k, (a, b) in tensors.items())


def test_clone_copies_one_member_to_many(population):
    source = population.get_member(2)
    population.clone(2, [0, 3])
    assert member_equal(population, 0, source) and member_equal(population, 3, source)
    assert not member_equal(population, 1, source)


def test_clone_pairwise(population):
    m0, m1 = population.get_member(0), population.get_member(1)
    population.clone([0, 1], [2, 3])
    assert member_equal(population, 2, m0) and member_equal(population, 3, m1)


def test_mutate_is_seeded_and_touches_only_its_members(population):
    before = [population.get_member(i) for i in range(4)]
    population.mutate([1, 2], sigma=0.01, generator=7)
    after_first = population.get_member(1)
    assert member_equal(population, 0, before[0]) and member_equal(population, 3, before[3])
    name = population.layer_names[0]
    change = population.A[name][1] - before[1][name][0]
    assert 0.005 < float(change.std()) < 0.02  # sigma-sized noise
    population.set_member(1, before[1])
    population.mutate([1, 2], sigma=0.01, generator=torch.Generator().manual_seed(7))
    assert member_equal(population, 1, after_first)


def test_keep_remove_add_change_ids_as_documented(population):
    m = [population.get_member(i) for i in range(4)]
    population.keep([3, 1, 1])
    assert population.n == 3
    assert member_equal(population, 0, m[3]) and member_equal(population, 2, m[1])
    population.remove([0])
    assert population.n == 2 and member_equal(population, 0, m[1])
    new = population.add(2)
    assert new == [2, 3] and population.n == 4
    assert all(float(population.B[k][2:].abs().max()) == 0 for k in population.layer_names)
    population.select([0])
    assert population.n == 1


def test_reset_member_gives_a_fresh_zero_update(population):
    population.reset_member(1)
    for name in population.layer_names:
        assert float(population.delta(1, name).abs().max()) == 0.0
        assert float(population.A[name][1].abs().max()) > 0


def test_set_member_round_trips_and_delta_is_exact(population):
    tensors = population.get_member(0)
    population.set_member(3, tensors)
    name = population.layer_names[5]
    a, b = tensors[name]
    assert torch.equal(population.delta(3, name), population.scale * b @ a)


def test_state_tensors_round_trip_through_safetensors(population, tmp_path):
    from safetensors.torch import load_file, save_file

    save_file(population.state_tensors(), str(tmp_path / "pop.safetensors"))
    other = LoRAPopulation(tiny_llama(), n=1, rank=4, alpha=8)
    other.load_state_tensors(load_file(str(tmp_path / "pop.safetensors")))
    assert other.n == 4
    for i in range(4):
        assert member_equal(other, i, population.get_member(i))


def test_bad_operations_raise_clear_errors(population):
    with pytest.raises(EvoloraError, match=r"\[0, 3\].*\[4\]"):
        population.clone(4, 0)
    with pytest.raises(EvoloraError, match="2 sources for 3 destinations"):
        population.clone([0, 1], [1, 2, 3])
    with pytest.raises(EvoloraError, match=r"outside population\.route"), population.route([0]):
        population.remove([1])
    wrong = population.get_member(0)
    name = population.layer_names[0]
    wrong[name] = (wrong[name][0][:2], wrong[name][1])
    with pytest.raises(EvoloraError, match=rf"{name}: got A \(2, 32\).*expected A \(4, 32\)"):
        population.set_member(0, wrong)
    del wrong[name]
    with pytest.raises(EvoloraError, match="missing"):
        population.set_member(0, wrong)
    state = population.state_tensors()
    state.pop(f"{name}.B")
    with pytest.raises(EvoloraError, match="does not match"):
        population.load_state_tensors(state)


def test_routing_is_the_running_rows_adapters_inside_route_and_none_outside(population):
    assert population.routing is None
    with population.route([2, -1, 0]):
        assert population.routing.ids.tolist() == [2, -1, 0]
    assert population.routing is None
