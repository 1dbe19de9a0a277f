"""`evolora report`: what an ecology run did, read back from its run folder.

Sources: `gen_summaries.jsonl` (one flat summary per generation), `episodes.jsonl`,
`assimilation.jsonl`, `evaluations.jsonl`, the config, and the gating snapshots kept in the latest
checkpoint. A resumed run repeats the generation that was in flight when it stopped, so every
stream is first reduced to each generation's latest attempt (`latest_attempt`).

`compute` turns the records into plain numbers (JSON-friendly dicts); `sections` lays them out as
tables for the terminal and the HTML page; `write_plots` draws the PNGs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evolora.ecology.config import AssimilationTuning, EcologyConfig
from evolora.errors import EvoloraError
from evolora.telemetry.report import Panel, Section, Table, plot_panels
from evolora.telemetry.rundir import RunDir
from evolora.telemetry.streams import latest_attempt

STREAMS = ("gen_summaries", "episodes", "assimilation", "evaluations")
VARIANTS = ("host", "best", "merged", "routed")  # as in evaluation.VARIANTS (no torch import here)


@dataclass
class RunRecords:
    """One run folder's config and de-duplicated streams, plus its recent gating snapshots."""

    path: Path
    config: EcologyConfig
    summaries: list[dict]
    episodes: list[dict]
    assimilation: list[dict]
    evaluations: list[dict]
    snapshots: list[dict]
    resumes: int


def load_run(path: str | Path) -> RunRecords:
    """Read a run folder; EvoloraError when it is not one or has no generation summary yet."""
    run = RunDir.open(path)
    config = run.config(EcologyConfig)
    raw = {name: run.read_stream(name) for name in STREAMS}
    if not raw["gen_summaries"]:
        raise EvoloraError(
            f"Run folder '{run.path}' has no generation summaries yet (gen_summaries.jsonl is "
            "missing or empty); a report needs at least one finished generation."
        )
    streams = {
        name: latest_attempt(records, [raw[other] for other in STREAMS if other != name])
        for name, records in raw.items()
    }
    attempts = {r.get("attempt", 0) for r in raw["gen_summaries"]}
    return RunRecords(
        path=run.path,
        config=config,
        summaries=streams["gen_summaries"],
        episodes=streams["episodes"],
        assimilation=streams["assimilation"],
        evaluations=streams["evaluations"],
        snapshots=_snapshots(run),
        resumes=len(attempts) - 1,
    )


def _snapshots(run: RunDir) -> list[dict]:
    """Gating snapshots held by the latest checkpoint (none when there is no checkpoint)."""
    if run.latest_checkpoint() is None:
        return []
    return list(run.load_checkpoint().state.get("snapshots", []))


# -- numbers -------------------------------------------------------------------------------------


def stats(values: Sequence[float]) -> dict:
    """last, mean, median, std (population), min and max of a sequence (None when empty)."""
    if not len(values):
        return dict.fromkeys(("last", "mean", "median", "std", "min", "max"))
    x = np.asarray(values, dtype=float)
    return {
        "last": float(x[-1]),
        "mean": float(x.mean()),
        "median": float(np.median(x)),
        "std": float(x.std()),
        "min": float(x.min()),
        "max": float(x.max()),
    }


def series(records: Sequence[dict], key: str) -> tuple[list[int], list[float]]:
    """(generations, values) of `key` over the records that hold it."""
    kept = [r for r in records if r.get(key) is not None]
    return [r["generation"] for r in kept], [float(r[key]) for r in kept]


def per_generation_mean(records: Sequence[dict], key: str) -> tuple[list[int], list[float]]:
    """(generations, mean of `key`) over the records of each generation that has any."""
    groups: dict[int, list[float]] = defaultdict(list)
    for r in records:
        groups[r["generation"]].append(float(r[key]))
    generations = sorted(groups)
    return generations, [float(np.mean(groups[g])) for g in generations]


def roi_stats(episodes: Sequence[dict]) -> dict:
    """ROI (revenue / cost) over all episodes, and its volatility across generations.

    `volatility` is the std of the per-generation mean ROI; `volatility_of_change` the std of its
    changes between consecutive generations that had episodes (stds are population stds).
    """
    every = stats([e["roi"] for e in episodes])
    _, means = per_generation_mean(episodes, "roi")
    return {
        "episodes": len(episodes),
        "mean": every["mean"],
        "median": every["median"],
        "std": every["std"],
        "generations": len(means),
        "volatility": float(np.std(means)) if means else None,
        "volatility_of_change": float(np.std(np.diff(means))) if len(means) > 1 else None,
    }


def species_stats(summaries: Sequence[dict]) -> dict:
    """Species shares of the last generation and the largest share any species ever reached."""
    last = summaries[-1].get("population/species_shares", {})
    largest = {"share": None, "species": None, "generation": None}
    for s in summaries:
        for species, share in s.get("population/species_shares", {}).items():
            if largest["share"] is None or share > largest["share"]:
                largest = {"share": share, "species": species, "generation": s["generation"]}
    return {
        "last": dict(sorted(last.items(), key=lambda kv: (-kv[1], int(kv[0])))),
        "alive": len(last),
        "largest_last": max(last.values()) if last else None,
        "largest_ever": largest,
    }


def attempt_row(record: dict, tuning: AssimilationTuning) -> dict:
    """One assimilation attempt: the uplift against its threshold, the holdout probe's verdict
    (`not probed` when an earlier stage stopped it), the energy top-up status and, for a passed
    merge, its paired change of evaluation accuracy with the 95 % interval."""
    uplift = record.get("uplift")
    before, after = record.get("holdout_before"), record.get("holdout_after")
    if before is None or after is None:
        holdout = "not probed"
    else:
        holdout = "failed" if "probe" in record.get("stopped_at", []) else "passed"
    if tuning.energy_topup_roi_bonus <= 0:
        topup = "off"
    else:
        topup = f"+{record['topup']:.3g}" if record.get("topup", 0) > 0 else "none"
    return {
        "generation": record["generation"],
        "organelle": record["organelle"],
        "control_mean": record.get("control_mean"),
        "treatment_mean": record.get("treatment_mean"),
        "uplift": uplift,
        "threshold": tuning.uplift_threshold,
        "uplift_clears": None if uplift is None else uplift >= tuning.uplift_threshold,
        "p_value": record.get("p_value"),
        "holdout_before": before,
        "holdout_after": after,
        "holdout": holdout,
        "topup": topup,
        "eval_gain": record.get("eval_gain"),
        "passed": bool(record.get("passed")),
        "reasons": list(record.get("reasons", [])),
    }


def accuracy_curves(evaluations: Sequence[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """Overall holdout accuracy of each variant (host, best, merged, routed) per evaluation."""
    return {
        v: ([e["generation"] for e in evaluations], [e[v]["overall"] for e in evaluations])
        for v in VARIANTS
    }


def family_accuracy(evaluation: dict | None) -> dict[str, dict[str, float]]:
    """Per-family accuracy of every variant in one evaluation: {family: {variant: accuracy}}."""
    if not evaluation:
        return {}
    families = sorted({f for v in VARIANTS for f in evaluation[v]["family"]})
    return {f: {v: evaluation[v]["family"].get(f) for v in VARIANTS} for f in families}


def compute(records: RunRecords, last: int = 5) -> dict:
    """Every number the report shows, as a JSON-friendly dict; `last` bounds the attempt lists."""
    summaries, tuning = records.summaries, records.config.assimilation_tuning
    final = summaries[-1]
    return {
        "run": {
            "path": str(records.path),
            "host": records.config.host,
            "seed": records.config.seed,
            "generation": final["generation"],
            "generations": records.config.generations,
            "resumes": records.resumes,
            "population": final.get("population/size"),
            "merges": final.get("assimilation/merges", 0),
        },
        "roi": roi_stats(records.episodes),
        "energy_gini": stats(series(summaries, "energy/gini")[1]),
        "energy_mean": stats(series(summaries, "energy/mean")[1]),
        "effective_population": stats(series(summaries, "population/effective")[1]),
        "population": stats(series(summaries, "population/size")[1]),
        "species": species_stats(summaries),
        "gating": dict(sorted(final.get("assimilation/gating", {}).items())),
        "attempts": [attempt_row(r, tuning) for r in records.assimilation[-last:]],
        "snapshots": [attempt_row(r, tuning) for r in records.snapshots[-last:]],
        "accuracy": {
            v: dict(zip(*curve, strict=True))
            for v, curve in accuracy_curves(records.evaluations).items()
        },
        "families": family_accuracy(records.evaluations[-1] if records.evaluations else None),
        "prices": final.get("market/prices", {}),
    }


# -- layout --------------------------------------------------------------------------------------


def sections(report: dict, images: dict[str, Path] | None = None) -> list[Section]:
    """The report as titled sections of tables (and, for HTML, the plots named in `images`)."""
    images = images or {}

    def pictures(*names: str) -> list[Path]:
        return [images[n] for n in names if n in images]

    run, roi = report["run"], report["roi"]
    overview = Table(
        "Run",
        ["item", "value"],
        [
            ["folder", run["path"]],
            ["host", run["host"]],
            ["seed", run["seed"]],
            ["generations", f"{run['generation']} of {run['generations']}"],
            ["resumes", run["resumes"]],
            ["organelles alive", run["population"]],
            ["merges", run["merges"]],
        ],
    )
    roi_table = Table(
        "ROI = revenue / cost per episode",
        ["statistic", "value"],
        [
            ["episodes", roi["episodes"]],
            ["mean", roi["mean"]],
            ["median", roi["median"]],
            ["std", roi["std"]],
            ["volatility (std of per-generation mean)", roi["volatility"]],
            ["volatility of change (std of its steps)", roi["volatility_of_change"]],
        ],
    )
    colony = Table(
        "Energy and population over generations",
        ["metric", "last", "mean", "min", "max"],
        [
            [name, s["last"], s["mean"], s["min"], s["max"]]
            for name, s in [
                ("energy Gini", report["energy_gini"]),
                ("energy (mean per organelle)", report["energy_mean"]),
                ("effective population", report["effective_population"]),
                ("population size", report["population"]),
            ]
        ],
    )
    species = report["species"]
    ever = species["largest_ever"]
    species_table = Table(
        f"Species shares at the last generation ({species['alive']} species)",
        ["species", "share"],
        [[k, v] for k, v in species["last"].items()],
        note=f"largest share ever: {_fmt(ever['share'])} (species {ever['species']}, "
        f"generation {ever['generation']})",
    )
    accuracy = report["accuracy"]
    generations = sorted({g for curve in accuracy.values() for g in curve})
    return [
        Section("Run", [overview]),
        Section("Return on investment", [roi_table], pictures("roi")),
        Section(
            "Energy, population and species",
            [colony, species_table],
            pictures("energy", "population", "species"),
        ),
        Section(
            "Assimilation",
            [
                Table(
                    "Gating totals", ["counter", "count"], list(map(list, report["gating"].items()))
                ),
                _attempts_table("Last assimilation attempts", report["attempts"]),
                _snapshot_table(report["snapshots"]),
            ],
            pictures("assimilation"),
        ),
        Section(
            "Holdout accuracy",
            [
                Table(
                    "Accuracy per evaluation",
                    ["generation", *VARIANTS],
                    [[g, *(accuracy[v].get(g) for v in VARIANTS)] for g in generations],
                ),
                Table(
                    "Accuracy per family at the last evaluation",
                    ["family", *VARIANTS],
                    [[f, *(row[v] for v in VARIANTS)] for f, row in report["families"].items()],
                ),
            ],
            pictures("accuracy"),
        ),
        Section(
            "Market",
            [
                Table(
                    "Price per cell at the last generation",
                    ["cell", "price"],
                    [[c, p] for c, p in sorted(report["prices"].items())],
                )
            ],
            pictures("prices"),
        ),
    ]


def _attempts_table(title: str, rows: list[dict]) -> Table:
    def uplift(r: dict) -> str:
        if r["uplift"] is None:
            return "—"
        sign = "≥" if r["uplift_clears"] else "<"
        return f"{r['uplift']:+.3f} {sign} {r['threshold']:+.3f}"

    def probe(r: dict) -> str:
        if r["holdout_before"] is None:
            return r["holdout"]
        return f"{r['holdout_before']:.3f}→{r['holdout_after']:.3f} {r['holdout']}"

    def evaluation(r: dict) -> str:
        gain = r.get("eval_gain")
        if not gain:
            return "—"
        low, high = gain["ci95"]
        return f"{100 * gain['mean']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"

    return Table(
        title,
        [
            "gen",
            "org",
            "control",
            "treatment",
            "uplift vs threshold",
            "p-value",
            "holdout probe",
            "top-up",
            "evaluation change, points (95 %)",
        ],
        [
            [
                r["generation"],
                r["organelle"],
                r["control_mean"],
                r["treatment_mean"],
                uplift(r),
                r["p_value"],
                probe(r),
                r["topup"],
                evaluation(r),
            ]
            for r in rows
        ],
        note="control = the colony's merged adapter, treatment = the candidate, on the same "
        "prompts; p-value of a one-sided paired permutation test; evaluation change = a passed "
        "merge's paired change of exact-answer accuracy on the evaluation prompts (recorded, "
        "never used to decide)",
    )


def _snapshot_table(rows: list[dict]) -> Table:
    return Table(
        "Recent gating snapshots (latest checkpoint)",
        ["gen", "organelle", "passed", "reasons"],
        [[r["generation"], r["organelle"], r["passed"], "; ".join(r["reasons"])] for r in rows],
    )


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


# -- plots ---------------------------------------------------------------------------------------


def write_plots(records: RunRecords, folder: str | Path) -> dict[str, Path]:
    """Draw the run's PNG plots (the charts of `panels.figures`) into `folder`; {name: path}."""
    return {
        name: plot_panels(Path(folder) / f"{name}.png", title, panels)
        for name, (title, panels) in run_figures(records).items()
    }


def run_figures(records: RunRecords) -> dict[str, tuple[str, list[Panel]]]:
    """The ecology's charts of this run (the same ones the dashboard draws)."""
    from evolora.ecology.panels import figures

    return figures(
        records.summaries,
        records.episodes,
        records.evaluations,
        records.assimilation,
        records.config.model_dump(mode="json"),
    )
