"""The host basis (LoRA-XS): members stay in each weight's top singular directions, and ES in it
learns."""

from __future__ import annotations

import pytest
import torch
from lora_models import tiny_llama

from evolora.errors import EvoloraError
from evolora.lora import LoRAPopulation, export_peft, import_peft, merge


def in_basis(pop: LoRAPopulation, member: int) -> bool:
    """Whether every layer's update of `member` equals its projection U_r U_r^T dW V_r V_r^T."""
    for name, (u, _, v_t) in pop.host_basis.items():
        delta = pop.delta(member, name)
        projected = u @ u.t() @ delta @ v_t.t() @ v_t
        if not torch.allclose(delta, projected, atol=1e-5):
            return False
    return True


@pytest.fixture
def pop() -> LoRAPopulation:
    return LoRAPopulation(tiny_llama(), n=6, rank=4, alpha=4, basis="host")


def test_fresh_members_leave_the_host_unchanged_and_hold_its_singular_directions():
    model = tiny_llama()
    weights = {name: m.weight.clone() for name, m in model.named_modules() if "proj" in name}
    pop = LoRAPopulation(model, n=6, rank=4, alpha=4, basis="host")
    assert sorted(weights) == sorted(pop.layer_names)
    for name in pop.layer_names:
        u, s, _ = torch.linalg.svd(weights[name], full_matrices=False)
        assert torch.allclose(pop.B[name][3], u[:, :4] * s[:4], atol=1e-5)
        assert torch.count_nonzero(pop.delta(3, name)) == 0
    tokens = torch.randint(1, 61, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        bare = model(tokens).logits
        with pop.route([3, 3]):
            routed = model(tokens).logits
    assert torch.equal(bare, routed)


def test_noise_es_updates_and_mutations_stay_in_the_basis(pop):
    eps = pop.noise(7)
    assert all(torch.count_nonzero(eps_b) == 0 for _, eps_b in eps.values())
    pop.perturb(0, [1, 2], seeds=[7], sigma=0.1)
    pop.es_update(0, seeds=[7, 8], weights=[1.0, -0.5], sigma=0.1, lr=0.2)
    pop.mutate([4], sigma=0.1, generator=3)
    for member in (0, 1, 2, 4):
        assert any(torch.count_nonzero(pop.delta(member, k)) for k in pop.layer_names)
        assert in_basis(pop, member)


def test_project_keeps_the_part_of_an_update_the_basis_can_hold(pop):
    gen = torch.Generator().manual_seed(1)
    for name in pop.layer_names:  # an arbitrary adapter, mostly outside the basis
        pop.A[name][0] = torch.randn(pop.A[name][0].shape, generator=gen)
        pop.B[name][0] = torch.randn(pop.B[name][0].shape, generator=gen)
    before = {name: pop.delta(0, name) for name in pop.layer_names}
    pop.project(0)
    assert in_basis(pop, 0)
    for name, (u, _, v_t) in pop.host_basis.items():
        wanted = u @ u.t() @ before[name] @ v_t.t() @ v_t
        assert torch.allclose(pop.delta(0, name), wanted, atol=1e-4)
    random_basis = LoRAPopulation(tiny_llama(), n=1, rank=4)
    random_basis.B[random_basis.layer_names[0]][0] = 1.0
    kept = random_basis.get_member(0)
    random_basis.project(0)  # nothing to do without a host basis
    assert all(torch.equal(random_basis.A[k][0], kept[k][0]) for k in kept)


def test_a_merge_of_members_written_back_is_exact(pop):
    pop.mutate([0, 1], sigma=0.2, generator=5)
    merged = merge(pop, [0, 1], method="svd_soup")
    pop.set_member(5, merged.tensors)
    for name in pop.layer_names:
        mean = (pop.delta(0, name) + pop.delta(1, name)) / 2
        assert torch.allclose(pop.delta(5, name), mean, atol=1e-4)
    assert in_basis(pop, 5)


def test_a_member_exported_to_peft_imports_back_unchanged(pop, tmp_path):
    pop.mutate([1], sigma=0.2, generator=2)
    export_peft(pop, 1, tmp_path / "adapter")
    import_peft(tmp_path / "adapter", pop, 4, check_base_model=False)
    for name in pop.layer_names:
        assert torch.allclose(pop.delta(4, name), pop.delta(1, name), atol=1e-5)
    assert in_basis(pop, 4)


def test_es_in_the_host_basis_learns_a_target_update():
    """ES on the r x r cores alone, with fitness = -|dW - dW_target|^2, closes the gap."""
    pairs, sigma, lr = 16, 0.05, 0.5
    pop = LoRAPopulation(tiny_llama(seed=2), n=2 * pairs + 2, rank=2, alpha=2, basis="host")
    target = pop.n - 1
    pop.mutate([target], sigma=0.5, generator=11)

    def distance(member: int) -> float:
        return sum(
            float(((pop.delta(member, k) - pop.delta(target, k)) ** 2).sum())
            for k in pop.layer_names
        )

    start = distance(0)
    for step in range(40):
        seeds = [step * pairs + k for k in range(pairs)]
        pop.perturb(0, list(range(1, 2 * pairs + 1)), seeds, sigma)
        fitness = torch.tensor([-distance(m) for m in range(1, 2 * pairs + 1)])
        # Raw differences (in units of the starting distance), so steps shrink near the target.
        pop.es_update(0, seeds, (fitness[0::2] - fitness[1::2]) / start, sigma, lr)
    assert distance(0) < 0.01 * start, (start, distance(0))


def test_bad_basis_or_a_rank_the_weights_cannot_hold_is_one_clear_error():
    with pytest.raises(EvoloraError, match="basis must be one of random, host"):
        LoRAPopulation(tiny_llama(), n=1, basis="svd")
    with pytest.raises(EvoloraError, match="rank <= min"):
        LoRAPopulation(tiny_llama(hidden=8), n=1, rank=12, basis="host")
