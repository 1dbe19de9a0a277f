import pytest
import torch

from evolora.ecology.genes import Gene, GenePool, gene_from_slot, layer_groups
from evolora.errors import EvoloraError
from evolora.lora import LoRAPopulation, export_peft, read_peft_update


def _random_members(population, members, seed=0):
    generator = torch.Generator().manual_seed(seed)
    for name in population.layer_names:
        for i in members:
            population.B[name][i] = torch.randn(population.B[name][i].shape, generator=generator)


def test_layers_group_by_transformer_block():
    names = ["model.layers.0.q", "model.layers.0.k", "model.layers.1.q", "lm_head"]
    assert layer_groups(names) == [0, 0, 1, 2]


def test_a_mix_of_genes_is_the_exact_weighted_sum_of_their_updates(tiny_host):
    population = LoRAPopulation(tiny_host, n=4, rank=4, alpha=8.0, seed=0)
    try:
        _random_members(population, [0, 1])
        pool = GenePool(rank=2, capacity=4)
        for slot in (0, 1):
            pool.add(gene_from_slot(population, slot, 2, f"g{slot}", "organelle", 0))
        groups = layer_groups(population.layer_names)
        coef = torch.tensor([[0.5, -1.0], [2.0, 0.25]])  # (genes, blocks): two blocks here
        pool.compose(population, 3, [0, 1], coef, groups)
        for name, group in zip(population.layer_names, groups, strict=True):
            want = sum(
                float(coef[k, group]) * (b @ a)
                for k, (a, b) in enumerate(pool.genes[g].factors[name] for g in (0, 1))
            )
            assert torch.allclose(population.delta(3, name), want, atol=1e-5)
    finally:
        population.detach()


def test_a_gene_keeps_its_update_exactly_when_it_fits_and_reports_what_a_cut_loses(tiny_host):
    population = LoRAPopulation(tiny_host, n=1, rank=4, alpha=8.0, seed=0)
    try:
        _random_members(population, [0])
        whole = gene_from_slot(population, 0, 4, "whole", "organelle", 0)
        cut = gene_from_slot(population, 0, 1, "cut", "organelle", 0)
        name = population.layer_names[0]
        a, b = whole.factors[name]
        assert torch.allclose(b @ a, population.delta(0, name), atol=1e-5)
        assert whole.kept_energy == pytest.approx(1.0)
        assert 0.0 < cut.kept_energy < 1.0
    finally:
        population.detach()


def test_a_full_pool_evicts_its_weakest_grown_gene_and_never_an_import():
    pool = GenePool(rank=1, capacity=2)
    factors = {"x": (torch.ones(1, 3), torch.ones(3, 1))}
    pool.add(Gene("imported", "import", -1, factors=factors))
    pool.add(Gene("weak", "organelle", 1, scores={"math:1": 0.1}, factors=factors))
    pool.add(Gene("strong", "organelle", 2, scores={"math:1": 0.4}, factors=factors))
    assert [g.name for g in pool.genes] == ["imported", "strong"]
    with pytest.raises(EvoloraError, match="rank 3"):
        pool.add(Gene("big", "import", 0, factors={"x": (torch.ones(3, 3), torch.ones(3, 3))}))


def test_a_pool_round_trips_through_its_folder(tmp_path):
    pool = GenePool(rank=2, capacity=3)
    factors = {"layer": (torch.randn(2, 5), torch.randn(4, 2))}
    pool.add(Gene("g", "merge", 7, niche="math", scores={"math:1": 0.25}, factors=factors))
    loaded = GenePool.load(pool.save(tmp_path / "pool"))
    (gene,) = loaded.genes
    assert gene.meta() == pool.genes[0].meta()
    pairs = zip(gene.factors["layer"], factors["layer"], strict=True)
    assert all(torch.equal(x, y) for x, y in pairs)
    with pytest.raises(EvoloraError, match="not a gene pool"):
        GenePool.load(tmp_path)


def test_a_peft_adapter_reads_back_as_its_exact_update(tiny_host, tmp_path):
    population = LoRAPopulation(tiny_host, n=1, rank=2, alpha=8.0, seed=0)
    try:
        _random_members(population, [0])
        export_peft(population, 0, tmp_path / "adapter")
        update = read_peft_update(tmp_path / "adapter")
        for name in population.layer_names:
            a, b = update[name]
            assert torch.allclose(b @ a, population.delta(0, name), atol=1e-5)
    finally:
        population.detach()
