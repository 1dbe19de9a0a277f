"""Evaluation: holdout accuracy of the host, the best organelle, the merged adapter and the
routed colony, with the routing table decided on reserved foraging prompts."""

from __future__ import annotations

from evolora.ecology.colony import HOST_SLOT
from evolora.ecology.evaluation import evaluate as evaluate_variants
from evolora.ecology.evaluation import route_table, slot_scores


def evaluate(eco) -> dict:
    """Score every variant on the fixed holdout, write the report to `evaluations`, return it."""
    tokens = eco.config.grid.max_new_tokens
    if eco.host_scores is None:
        eco.host_scores = slot_scores(eco.host, None, [HOST_SLOT], eco.holdout, tokens)[0]
    report, eco.last_scores = evaluate_variants(
        eco.host,
        eco.population,
        eco.colony,
        eco.holdout,
        tokens,
        eco.host_scores,
        routes(eco),
    )
    report["generation"] = eco.generation
    report["attempt"] = eco.attempt
    eco.last_eval = report
    eco.write("evaluations", report)
    return report


def routes(eco) -> dict:
    """The routed colony's table: the slot that serves each cell (evaluation.route_table)."""
    settings = eco.config.evaluation
    return route_table(
        eco.host,
        eco.population,
        eco.colony,
        eco.route_examples,
        eco.config.grid.max_new_tokens,
        settings.route_z,
        settings.route_candidates,
        settings.route_pooled,
    )
