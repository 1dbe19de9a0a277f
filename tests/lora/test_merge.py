"""Merges on exact updates: linear is exact, svd_soup truncates optimally, ties and dare behave."""

from __future__ import annotations

import pytest
import torch

from evolora.errors import EvoloraError
from evolora.lora import MERGE_METHODS, MergeResult, merge


def product(result: MergeResult, name: str) -> torch.Tensor:
    a, b = result.tensors[name]
    return b @ a


def weighted_sum(population, members, weights, name) -> torch.Tensor:
    return sum(w * population.delta(m, name) for m, w in zip(members, weights, strict=True)) / (
        population.scale)


def test_linear_merge_of_one_adapter_with_weight_one_is_exact(population):
    result = merge(population, [2], [1.0], method="linear")
    assert result.rank == population.rank
    for name in population.layer_names:
        a, b = result.tensors[name]
        assert torch.equal(a, population.A[name][2]) and torch.equal(b, population.B[name][2])
        assert result.kept_energy[name] == 1.0


def test_linear_merge_is_the_weighted_sum_of_updates(population):
    result = merge(population, [0, 3], [0.25, -1.5], method="linear", rank=10)
    assert result.rank == 10
    for name in population.layer_names:
        expected = weighted_sum(population, [0, 3], [0.25, -1.5], name)
        assert torch.allclose(product(result, name), expected, atol=1e-6)


def test_svd_soup_at_full_rank_equals_linear(population):
    members, weights = [0, 1, 3], [0.5, 0.3, 0.2]
    linear = merge(population, members, weights, method="linear")
    soup = merge(population, members, weights, method="svd_soup", rank=3 * population.rank)
    for name in population.layer_names:
        assert torch.allclose(product(soup, name), product(linear, name), atol=1e-5)
        assert soup.kept_energy[name] == pytest.approx(1.0)


def test_svd_soup_truncation_is_the_best_rank_r_and_reports_kept_energy(population):
    soup = merge(population, [0, 1], method="svd_soup", rank=3)
    for name in population.layer_names:
        full = weighted_sum(population, [0, 1], [0.5, 0.5], name).double()
        s = torch.linalg.svdvals(full)
        assert soup.tensors[name][0].shape == (3, full.shape[1])
        residual = torch.linalg.matrix_norm(full - product(soup, name).double()) ** 2
        assert float(residual) == pytest.approx(float((s[3:] ** 2).sum()), rel=1e-4, abs=1e-9)
        assert soup.kept_energy[name] == pytest.approx(float((s[:3] ** 2).sum() / (s**2).sum()))


def test_a_merged_adapter_fits_a_population_slot(population):
    soup = merge(population, [1, 2], method="svd_soup")
    population.set_member(0, soup.tensors)
    name = population.layer_names[0]
    assert torch.allclose(population.B[name][0] @ population.A[name][0], product(soup, name))


def test_ties_of_one_adapter_at_full_density_is_that_adapter(population):
    result = merge(population, [1], [1.0], method="ties", density=1.0)
    for name in population.layer_names:
        expected = population.delta(1, name) / population.scale
        assert torch.allclose(product(result, name), expected, atol=1e-5)


def test_ties_trims_elects_signs_and_averages_agreeing_entries():
    one = (torch.eye(2), torch.tensor([[3.0, 0.1], [-1.0, 2.0]]))  # A = I, so ΔW = B
    two = (torch.eye(2), torch.tensor([[1.0, -0.2], [2.0, -4.0]]))
    result = merge([{"w": one}, {"w": two}], method="ties", rank=2, density=0.75)
    # trimmed: [[3, 0], [-1, 2]] and [[1, 0], [2, -4]] (smallest |.| dropped); signs: +, 0, +, -
    expected = torch.tensor([[2.0, 0.0], [2.0, -4.0]])
    assert torch.allclose(product(result, "w"), expected, atol=1e-5)


def test_dare_is_seeded_unbiased_and_exact_at_density_one(population):
    name = population.layer_names[3]
    one_layer = [{name: (population.A[name][m], population.B[name][m])} for m in (0, 1)]
    full = merge(one_layer, method="dare", density=1.0, rank=8)
    linear = merge(one_layer, method="linear")
    assert torch.allclose(product(full, name), product(linear, name), atol=1e-5)
    first = merge(one_layer, method="dare", density=0.5, seed=3)
    again = merge(one_layer, method="dare", density=0.5, seed=3)
    other = merge(one_layer, method="dare", density=0.5, seed=4)
    assert torch.equal(product(first, name), product(again, name))
    assert not torch.equal(product(first, name), product(other, name))
    dense = [merge(one_layer, method="dare", density=0.5, seed=s, rank=8) for s in range(40)]
    mean = sum(product(d, name) for d in dense) / len(dense)
    target = product(linear, name)
    assert float((mean - target).norm() / target.norm()) < 0.25  # rescaling keeps it unbiased


@pytest.mark.parametrize("method", sorted(MERGE_METHODS))
def test_every_method_returns_factors_of_the_asked_rank(population, method):
    result = merge(population, [0, 1, 2], method=method, rank=12)
    for name in population.layer_names:
        d_in, d_out = population.layer_shapes[name]
        assert result.tensors[name][0].shape == (12, d_in)
        assert result.tensors[name][1].shape == (d_out, 12)
        assert 0.0 <= result.kept_energy[name] <= 1.0 + 1e-9


def test_merge_rejects_bad_input(population):
    with pytest.raises(EvoloraError, match="choose one of dare, linear, svd_soup, ties"):
        merge(population, [0], method="average")
    with pytest.raises(EvoloraError, match=r"exact at rank 8.*svd_soup"):
        merge(population, [0, 1], method="linear", rank=4)
    with pytest.raises(EvoloraError, match="2 finite weights"):
        merge(population, [0, 1], [1.0])
    with pytest.raises(EvoloraError, match=r"no option 'drop'.*density"):
        merge(population, [0, 1], method="dare", drop=0.5)
    with pytest.raises(EvoloraError, match=r"density must be in \(0, 1\]"):
        merge(population, [0, 1], method="ties", density=0.0)
    bad = population.get_member(0)
    name = population.layer_names[0]
    bad[name] = (bad[name][0][:, :5], bad[name][1])
    with pytest.raises(EvoloraError, match=rf"Layer {name}: adapter 1 has A \(4, 5\)"):
        merge([population.get_member(1), bad], method="linear")
