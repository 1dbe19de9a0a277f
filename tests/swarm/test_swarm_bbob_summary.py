"""The bbob benchmark's summary (benchmarks/swarm_bbob_summary.py): counts, suite medians,
target check, missing problems and the run store."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from swarm_bbob_summary import load_runs, missing_groups, run_key, summarise

METHODS = ["swarm", "tpe", "random"]


def _results(regrets: dict[tuple[str, int, int, int], list[float]]) -> dict:
    return {key: [(r, 1.0, 0.001) for r in values] for key, values in regrets.items()}


def test_counts_and_suite_medians_on_hand_made_regrets():
    # f1: swarm 0.0 vs tpe 1.0 (better), f2: 1.0 vs 1.05 (tied), f3: 2.0 vs 1.0 (worse);
    # random is always 3.0, so the swarm beats it everywhere.
    swarm, tpe = {1: 0.0, 2: 1.0, 3: 2.0}, {1: 1.0, 2: 1.05, 3: 1.0}
    regrets = {}
    for f in (1, 2, 3):
        regrets[("swarm", f, 2, 1)] = [swarm[f]] * 3
        regrets[("tpe", f, 2, 1)] = [tpe[f]] * 3
        regrets[("random", f, 2, 1)] = [3.0] * 3
    figures, table = summarise(_results(regrets), METHODS, "header")
    assert figures["counts"]["tpe"] == {"better": 1, "tied": 1, "worse": 1}
    assert figures["counts"]["random"] == {"better": 3, "tied": 0, "worse": 0}
    assert figures["suite_median"] == pytest.approx({"swarm": 1.0, "tpe": 1.0, "random": 3.0})
    assert figures["targets"] == {
        "better_than_tpe": False,  # 1 of 3 < 60 %
        "better_than_random": True,
        "never_worse_than_random": True,
    }
    assert "33% (1 of 3): missed" in table


def test_medians_pool_seeds_and_instances_and_a_worse_instance_misses_the_median_target():
    regrets = {}
    for f in (1, 2):
        regrets[("swarm", f, 5, 1)] = [0.0, 0.1, 0.2]
        regrets[("swarm", f, 5, 2)] = [4.0, 4.0, 4.0]  # worse than random on instance 2
        for m, v in (("tpe", 1.0), ("random", 2.0)):
            regrets[(m, f, 5, 1)] = [v] * 3
            regrets[(m, f, 5, 2)] = [v] * 3
    figures, table = summarise(_results(regrets), METHODS, "header")
    # per function: the median of the six pooled runs 0.0 0.1 0.2 4 4 4
    assert figures["medians"]["swarm"][1] == pytest.approx(2.1)
    assert figures["per_dim_instance_median"]["swarm"] == pytest.approx({"5:1": 0.1, "5:2": 4.0})
    assert figures["counts_per_problem"]["random"] == {"better": 2, "tied": 0, "worse": 2}
    assert figures["targets"]["never_worse_than_random"] is False
    assert "missed in suite, dim 5, dim 5 inst 2" in table


def test_missing_groups_names_the_unmeasured_functions_as_ranges():
    wanted = [(f, d, i) for f in range(1, 7) for d in (2, 10) for i in (1, 2)]
    measured = [c for c in wanted if not (c[1] == 10 and c[2] == 2 and c[0] != 4)]
    assert missing_groups(wanted, measured) == (
        "Not measured (no complete set of runs): dim 10 inst 2: f1-f3, f5-f6."
    )
    assert missing_groups(wanted, wanted) == ""


def test_load_runs_keeps_baselines_and_only_the_current_swarm_code(tmp_path):
    store = tmp_path / "runs.jsonl"
    rows = [
        {"key": run_key("tpe", 1, 2, 1, 0, 200), "code": None, "result": [0.5, 2.0, 0.01]},
        {"key": run_key("swarm", 1, 2, 1, 0, 200), "code": "old", "result": [9.0, 1.0, 0.001]},
        {"key": run_key("swarm", 1, 2, 1, 1, 200), "code": "new", "result": [0.1, 1.0, 0.001]},
    ]
    store.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs = load_runs(store, "new")
    assert runs == {
        "tpe|bbob:1:2:1|0|200": (0.5, 2.0, 0.01),
        "swarm|bbob:1:2:1|1|200": (0.1, 1.0, 0.001),
    }
    assert load_runs(tmp_path / "absent.jsonl", "new") == {}
