"""`evolora genes import | list | export` on PEFT adapters of the tiny host's model folder."""

from __future__ import annotations

import pytest
import torch

from evolora.cli import main
from evolora.ecology.genes import GenePool
from evolora.hosts import load_host
from evolora.lora import LoRAPopulation, export_peft, read_peft_update


@pytest.fixture
def adapter(host_dir, tmp_path):
    """A rank-2 PEFT adapter with a random, non-zero update, and its update per layer."""
    population = LoRAPopulation(load_host(str(host_dir)), n=1, rank=2, alpha=8.0, seed=0)
    try:
        generator = torch.Generator().manual_seed(1)
        for name in population.layer_names:
            population.B[name][0] = torch.randn(population.B[name][0].shape, generator=generator)
        path = export_peft(population, 0, tmp_path / "math-adapter", str(host_dir))
        return path, {k: population.delta(0, k) for k in population.layer_names}
    finally:
        population.detach()


def test_an_imported_gene_lists_and_exports_as_its_exact_update(
    adapter, host_dir, tmp_path, capsys
):
    path, update = adapter
    pool = tmp_path / "pool"
    assert main(["genes", "import", str(path), "--pool", str(pool), "--niche", "math"]) == 0
    genes = GenePool.load(pool)
    assert [(g.name, g.origin, g.niche) for g in genes.genes] == [
        ("math-adapter", "import", "math")
    ]
    assert main(["genes", "list", str(pool)]) == 0
    assert "math-adapter" in capsys.readouterr().out
    out = tmp_path / "exported"
    assert (
        main(["genes", "export", str(pool), "math-adapter", str(out), "--host", str(host_dir)]) == 0
    )
    exported = read_peft_update(out)
    for name, delta in update.items():
        a, b = exported[name]
        assert torch.allclose(b @ a, delta, atol=1e-5)


def test_an_import_larger_than_the_pool_rank_is_cut_and_says_what_it_kept(
    adapter, tmp_path, capsys
):
    path, _ = adapter
    pool = tmp_path / "pool"
    assert main(["genes", "import", str(path), "--pool", str(pool), "--rank", "1"]) == 0
    (gene,) = GenePool.load(pool).genes
    assert 0.0 < gene.kept_energy < 1.0
    assert f"{gene.kept_energy:.1%} of its update kept" in capsys.readouterr().out


def test_a_second_gene_of_the_same_name_needs_force(adapter, tmp_path, capsys):
    path, _ = adapter
    pool = tmp_path / "pool"
    assert main(["genes", "import", str(path), "--pool", str(pool)]) == 0
    assert main(["genes", "import", str(path), "--pool", str(pool)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["genes", "import", str(path), "--pool", str(pool), "--force"]) == 0
    assert len(GenePool.load(pool)) == 1


def test_export_names_the_genes_a_pool_holds_and_refuses_a_used_folder(
    adapter, host_dir, tmp_path, capsys
):
    path, _ = adapter
    pool = tmp_path / "pool"
    assert main(["genes", "import", str(path), "--pool", str(pool)]) == 0
    argv = ["genes", "export", str(pool), "nope", str(tmp_path / "out"), "--host", str(host_dir)]
    assert main(argv) == 2
    assert "math-adapter" in capsys.readouterr().err
    used = tmp_path / "used"
    used.mkdir()
    (used / "file").write_text("x")
    assert main(["genes", "export", str(pool), "0", str(used), "--host", str(host_dir)]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_a_pool_made_for_other_layers_is_refused_when_a_run_loads_it(tmp_path, tiny_host):
    from evolora.ecology.genes import Gene
    from evolora.errors import EvoloraError

    pool = GenePool(2, 4)
    pool.add(
        Gene(
            "alien",
            "import",
            0,
            factors={"model.other.q_proj": (torch.ones(2, 3), torch.ones(3, 2))},
        )
    )
    population = LoRAPopulation(tiny_host, n=1, rank=2, seed=0)
    try:
        with pytest.raises(EvoloraError, match="alien"):
            pool.check_layers(population)
    finally:
        population.detach()
