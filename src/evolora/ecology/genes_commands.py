"""`evolora genes list | import | export`: look into a gene pool folder, add a PEFT adapter to it,
write one of its genes as a PEFT adapter."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from evolora.errors import EvoloraError

genes_app = typer.Typer(
    help="The gene pool the `compose` rule mixes from: a folder (pool.json + genes.safetensors) "
    "that a run writes to RUN/genes and that `genes.pool` in a config reads.",
    no_args_is_help=True,
)


@genes_app.command("list")
def list_command(
    pool: Path = typer.Argument(..., help="A gene pool folder (e.g. RUN/genes)."),
) -> None:
    """Show every gene: provenance, niche, rank, kept energy and its best-scored cells."""
    from evolora.ecology.genes import GenePool, gene_rank

    genes = GenePool.load(pool)
    table = Table(title=f"{pool}: {len(genes)} of {genes.capacity} genes, rank {genes.rank}")
    for column in ("#", "name", "origin", "generation", "niche", "rank", "kept", "best cells"):
        table.add_column(column)
    for i, gene in enumerate(genes.genes):
        best = sorted(gene.scores.items(), key=lambda kv: -kv[1])[:3]
        table.add_row(
            str(i),
            gene.name,
            gene.origin,
            str(gene.generation),
            gene.niche or "-",
            str(gene_rank(gene)),
            f"{gene.kept_energy:.3f}",
            ", ".join(f"{cell} {score:+.2f}" for cell, score in best) or "-",
        )
    Console().print(table)


@genes_app.command("import")
def import_command(
    adapter: Path = typer.Argument(..., help="A PEFT LoRA adapter folder (safetensors weights)."),
    pool: Path = typer.Option(
        ..., "--pool", help="The gene pool folder; made (empty) when it does not exist yet."
    ),
    name: str | None = typer.Option(None, "--name", help="The gene's name (default: folder name)."),
    niche: str | None = typer.Option(
        None, "--niche", help="What it was trained for: a family (math) or a cell (math:2)."
    ),
    rank: int = typer.Option(4, "--rank", min=1, help="Rank of a new pool's genes."),
    capacity: int = typer.Option(12, "--capacity", min=1, help="Genes a new pool keeps."),
    force: bool = typer.Option(False, "--force", help="Replace a gene of the same name."),
) -> None:
    """Add a PEFT adapter's exact update to a pool as an imported gene (never evicted)."""
    from evolora.ecology.genes import POOL_FILE, GenePool, gene_from_peft

    genes = GenePool.load(pool) if (pool / POOL_FILE).exists() else GenePool(rank, capacity)
    name = name or adapter.resolve().name
    if any(g.name == name for g in genes.genes) and not force:
        raise EvoloraError(
            f"Pool '{pool}' already holds a gene named {name!r}; pass --force to replace it "
            "or --name to choose another name."
        )
    gene = gene_from_peft(adapter, genes.rank, name, niche)
    if genes.genes and set(gene.factors) != set(genes.genes[0].factors):
        raise EvoloraError(
            f"{adapter} adapts other layers than the genes in '{pool}' (a pool holds genes of "
            "one host and one set of LoRA targets)."
        )
    if not genes.add(gene):
        raise EvoloraError(
            f"Pool '{pool}' is full of imported genes ({genes.capacity}); make a new pool."
        )
    genes.save(pool)
    cut = "" if gene.kept_energy >= 1.0 - 1e-6 else f", {gene.kept_energy:.1%} of its update kept"
    Console().print(
        f"Imported {adapter} as gene {name!r} (rank {genes.rank}{cut}) into [bold]{pool}[/bold] "
        f"({len(genes)} genes).",
        highlight=False,
    )


@genes_app.command("export")
def export_command(
    pool: Path = typer.Argument(..., help="A gene pool folder."),
    gene: str = typer.Argument(..., help="The gene's name or its number in `evolora genes list`."),
    out: Path = typer.Argument(..., help="New (or empty) folder for the PEFT adapter."),
    host: str = typer.Option(
        "builtin", "--host", help="The host the gene was made on: builtin, or a local HF folder."
    ),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ..."),
) -> None:
    """Write one gene as a PEFT LoRA adapter folder of the gene's rank (its update exactly)."""
    from evolora.ecology.commands import base_model_name
    from evolora.ecology.genes import GenePool, gene_rank
    from evolora.hosts import load_host
    from evolora.lora import LoRAPopulation, export_peft

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EvoloraError(
            f"Output '{out}' already exists and is not an empty folder; choose a new folder."
        )
    genes = GenePool.load(pool)
    index = {g.name: i for i, g in enumerate(genes.genes)}
    if gene.isdigit() and int(gene) < len(genes):
        index[gene] = int(gene)
    if gene not in index:
        raise EvoloraError(
            f"Pool '{pool}' has no gene {gene!r}; it holds: {', '.join(index) or 'nothing'}."
        )
    chosen = genes.genes[index[gene]]
    model = load_host(host, device)
    rank = gene_rank(chosen)
    population = LoRAPopulation(
        model, n=1, rank=rank, alpha=float(rank), targets=_targets(chosen.factors)
    )
    try:
        genes.check_layers(population)
        population.set_member(
            0, {layer: (a, b / population.scale) for layer, (a, b) in chosen.factors.items()}
        )
        path = export_peft(population, 0, out, base_model_name(host))
    finally:
        population.detach()
    Console().print(
        f"Wrote gene {chosen.name!r} (rank {rank}) to [bold]{path}[/bold] (load it with "
        "peft.PeftModel.from_pretrained(model, path)).",
        highlight=False,
    )


def _targets(factors: dict) -> tuple[str, ...]:
    """The LoRA target suffixes (q_proj, up_proj ...) a gene's layer names end with."""
    return tuple(sorted({layer.rsplit(".", 1)[-1] for layer in factors}))
