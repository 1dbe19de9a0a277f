"""`evolora report` and `evolora export` on a real run folder made with the tiny host.

The run is killed after generation 3's records were written but before its checkpoint, then
resumed, so generation 3 is in the streams twice (attempt 0, then attempt 1). The scorer is
replaced by a seeded hash of prompt and completion, so rewards, wins and merges happen on the
untrained host, and it changes at the resume, so the stale attempt-0 records differ from the
ones that count. The resumed part runs with assimilation off, so the stale generation's
assimilation record (if any) is only recognisable as stale through the other streams.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import shutil
import statistics
from collections import defaultdict
from pathlib import Path

import pytest
from ecology_helpers import hash_scorer, small_config

import evolora.ecology.evaluation as evaluation_module
import evolora.ecology.phases.foraging as foraging_module
from evolora.cli import main
from evolora.ecology.colony import MERGED_SLOT, Colony
from evolora.ecology.evaluation import best_organelle
from evolora.ecology.loop import Ecology
from evolora.ecology.report import compute, latest_attempt, load_run
from evolora.errors import EvoloraError
from evolora.telemetry.checkpoint import latest_checkpoint
from evolora.telemetry.dashboard.figures import plotly_js
from evolora.telemetry.rundir import RunDir

REDONE = 3  # the generation in flight when the run was killed


@pytest.fixture(scope="module")
def config(host_dir):
    return small_config(
        host=str(host_dir),
        generations=4,
        population={"initial": 3, "min": 2, "max": 4},
        learning={"rules": ["es"], "batch": 2, "es": {"pairs": 1}},
        specialisation={"niche": "none"},
        assimilation_tuning={
            "energy_gate": 3.4,
            "uplift_threshold": 0.0,
            "p_value": 1.0,
            "holdout_margin": -1.0,
            "holdout_probe_size": 2,
            "energy_topup_roi_bonus": 0.3,
            "topup_roi_threshold": 0.0,
        },
        evaluation={"every": 1, "per_cell": 1},
    )


@pytest.fixture(scope="module")
def run_path(tiny_host, config, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        for module in (foraging_module, evaluation_module):
            patch.setattr(module, "score", hash_scorer("before"))
        run = RunDir.create(tmp_path_factory.mktemp("runs"), config, name="ecology")
        ecology = Ecology.start(config, tiny_host, run)
        while ecology.generation < REDONE:
            ecology.step()
        ecology.close()
        # Killed after generation 3 wrote its records, before its checkpoint was complete.
        for path in run.checkpoint_dir.glob(f"step_{REDONE:06d}.*"):
            path.unlink()
        # After the resume nothing is assimilated, so the recent windows survive to the end and
        # the best organelle is not the merged adapter.
        for module in (foraging_module, evaluation_module):
            patch.setattr(module, "score", hash_scorer("after"))
        quiet = config.model_copy(
            update={
                "assimilation_tuning": config.assimilation_tuning.model_copy(
                    update={"enabled": False}
                )
            }
        )
        ecology = Ecology.resume(quiet, tiny_host, RunDir.open(run.path))
        while not ecology.finished:
            ecology.step()
        ecology.close()
    return run.path


def _raw(run_path, stream):
    return RunDir.open(run_path).read_stream(stream)


def _current(records):
    """The records that count, knowing which generation was redone at which attempt."""
    return [r for r in records if not (r["generation"] == REDONE and r["attempt"] == 0)]


def test_latest_attempt_keeps_only_each_generations_last_attempt():
    records = [
        {"generation": 1, "attempt": 0, "id": "a"},
        {"generation": 2, "attempt": 0, "id": "b"},
        {"generation": 3, "attempt": 0, "id": "stale-1"},
        {"generation": 3, "attempt": 0, "id": "stale-2"},
        {"generation": 3, "attempt": 1, "id": "c"},
        {"generation": 3, "attempt": 1, "id": "d"},
        {"generation": 4, "attempt": 1, "id": "e"},
    ]
    assert [r["id"] for r in latest_attempt(records)] == ["a", "b", "c", "d", "e"]
    assert [r["id"] for r in latest_attempt(reversed(records))] == ["a", "b", "d", "c", "e"]
    # A generation redone without writing to this stream: the other streams say it was redone.
    other = [{"generation": 3, "attempt": 1}]
    assert [r["id"] for r in latest_attempt(records[:4], among=[other])] == ["a", "b"]
    assert latest_attempt([]) == []


def test_the_run_really_repeats_a_generation(run_path):
    summaries = _raw(run_path, "gen_summaries")
    assert [(s["generation"], s["attempt"]) for s in summaries] == [
        (1, 0),
        (2, 0),
        (3, 0),
        (3, 1),
        (4, 1),
    ]
    stale = [e for e in _raw(run_path, "episodes") if e["generation"] == REDONE]
    assert {e["attempt"] for e in stale} == {0, 1}


def test_report_numbers_match_the_streams(run_path, config):
    records = load_run(run_path)
    report = compute(records, last=2)

    summaries = _current(_raw(run_path, "gen_summaries"))
    episodes = _current(_raw(run_path, "episodes"))
    assimilation = _current(_raw(run_path, "assimilation"))
    evaluations = _current(_raw(run_path, "evaluations"))
    assert records.summaries == summaries
    assert records.episodes == episodes
    assert records.evaluations == evaluations
    assert records.assimilation == assimilation
    assert records.resumes == 1

    rois = [e["roi"] for e in episodes]
    assert report["roi"]["episodes"] == len(rois) == len({id(e) for e in episodes})
    assert report["roi"]["mean"] == pytest.approx(statistics.fmean(rois))
    assert report["roi"]["median"] == pytest.approx(statistics.median(rois))
    assert report["roi"]["std"] == pytest.approx(statistics.pstdev(rois))
    by_generation = defaultdict(list)
    for e in episodes:
        by_generation[e["generation"]].append(e["roi"])
    means = [statistics.fmean(by_generation[g]) for g in sorted(by_generation)]
    # The loop's own per-generation ROI mean agrees with the de-duplicated episodes.
    assert means == pytest.approx([s["roi/mean"] for s in summaries])
    assert report["roi"]["volatility"] == pytest.approx(statistics.pstdev(means))
    steps = [b - a for a, b in itertools.pairwise(means)]
    assert report["roi"]["volatility_of_change"] == pytest.approx(statistics.pstdev(steps))

    gini = [s["energy/gini"] for s in summaries]
    assert report["energy_gini"]["last"] == gini[-1]
    assert report["energy_gini"]["mean"] == pytest.approx(statistics.fmean(gini))
    assert report["energy_gini"]["max"] == max(gini)
    effective = [s["population/effective"] for s in summaries]
    assert report["effective_population"]["last"] == effective[-1]
    assert report["effective_population"]["min"] == min(effective)

    shares = summaries[-1]["population/species_shares"]
    assert report["species"]["last"] == shares
    assert report["species"]["largest_last"] == max(shares.values())
    assert report["species"]["largest_ever"]["share"] == max(
        max(s["population/species_shares"].values()) for s in summaries
    )
    assert report["gating"] == summaries[-1]["assimilation/gating"]
    assert report["gating"].get("assimilation/attempts", 0) == len(assimilation) > 0

    rows = report["attempts"]
    assert [(r["generation"], r["organelle"]) for r in rows] == [
        (a["generation"], a["organelle"]) for a in assimilation[-2:]
    ]
    for row, record in zip(rows, assimilation[-2:], strict=True):
        assert row["uplift"] == pytest.approx(record["treatment_mean"] - record["control_mean"])
        assert row["threshold"] == config.assimilation_tuning.uplift_threshold
        assert row["uplift_clears"] == (record["uplift"] >= row["threshold"])
        assert row["p_value"] == record["p_value"]
        probed = record["holdout_before"] is not None
        assert row["holdout"] == (
            ("failed" if "probe" in record["stopped_at"] else "passed") if probed else "not probed"
        )
        assert row["eval_gain"] == record["eval_gain"]
        assert (record["eval_gain"] is not None) == record["passed"]
        assert row["topup"] == (f"+{record['topup']:.3g}" if record["topup"] > 0 else "none")

    checkpoint = json.loads(latest_checkpoint(RunDir.open(run_path).checkpoint_dir).read_text())
    snapshots = checkpoint["state"]["snapshots"][-2:]
    assert [(r["generation"], r["organelle"], r["reasons"]) for r in report["snapshots"]] == [
        (s["generation"], s["organelle"], s["reasons"]) for s in snapshots
    ]

    for variant in ("host", "best", "merged", "routed"):
        assert report["accuracy"][variant] == {
            e["generation"]: e[variant]["overall"] for e in evaluations
        }
    assert sorted(report["accuracy"]["host"]) == [1, 2, 3, 4]
    last = evaluations[-1]
    assert report["families"] == {
        family: {v: last[v]["family"][family] for v in ("host", "best", "merged", "routed")}
        for family in ("logic", "math")
    }


def test_report_prints_every_section(run_path, capsys):
    assert main(["report", str(run_path), "--last", "3"]) == 0
    out = capsys.readouterr().out
    for title in (
        "Return on investment",
        "Energy and population over generations",
        "Species shares",
        "Gating totals",
        "Last assimilation attempts",
        "Recent gating snapshots",
        "Accuracy per family",
        "Price per cell",
    ):
        assert title in out, title
    assert "assimilation/attempts" in out
    assert not (run_path / "report").exists()


@pytest.mark.slow
def test_plots_then_a_self_contained_html_page(run_path, tmp_path):
    run_path = Path(shutil.copytree(run_path, tmp_path / "run"))
    folder = run_path / "report"
    assert main(["report", str(run_path), "--plots"]) == 0
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert pngs == sorted(
        f"{n}.png"
        for n in ("energy", "roi", "population", "accuracy", "species", "prices", "assimilation")
    )
    for name in pngs:
        data = (folder / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000, name
    assert not (folder / "index.html").exists()

    assert main(["report", str(run_path), "--html"]) == 0
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert page.count('<img src="data:image/png;base64,') == len(pngs)
    # Self-contained: plotly.js is inlined; nothing is fetched from anywhere.
    own = page.replace(plotly_js(), "")
    assert plotly_js() in page
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", own)
    assert "<script src" not in own and "<link" not in own
    # The same interactive charts the dashboard draws, one per PNG.
    assert page.count("Plotly.newPlot(") == len(pngs)
    assert "Last assimilation attempts" in page


def test_report_refuses_folders_that_are_not_finished_runs(tmp_path, config, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not an evolora run folder" in capsys.readouterr().err
    empty = RunDir.create(tmp_path, config, name="ecology")
    with pytest.raises(EvoloraError, match="no generation summaries"):
        load_run(empty.path)


@pytest.mark.parametrize("member", ["best", "merged"])
def test_export_writes_a_peft_adapter_of_the_chosen_member(
    run_path, config, tiny_host, tmp_path, member
):
    from peft import PeftModel, get_peft_model_state_dict

    from evolora.telemetry.checkpoint import load_checkpoint

    out = tmp_path / member
    assert main(["export", str(run_path), "--member", member, str(out)]) == 0
    assert (out / "adapter_config.json").is_file()
    assert (out / "adapter_model.safetensors").is_file()

    checkpoint = load_checkpoint(latest_checkpoint(RunDir.open(run_path).checkpoint_dir))
    colony = Colony(config)
    colony.load_state(checkpoint.state["colony"])
    slot = MERGED_SLOT if member == "merged" else best_organelle(colony).slot
    assert (slot == MERGED_SLOT) == (member == "merged")

    model = PeftModel.from_pretrained(copy.deepcopy(tiny_host.model), str(out))
    loaded = get_peft_model_state_dict(model)
    # The population's own tensors; "rule/..." and "genes/..." keys hold other parts.
    layers = sorted({k.rsplit(".", 1)[0] for k in checkpoint.tensors if "/" not in k})
    assert len(loaded) == 2 * len(layers)
    for layer in layers:
        for factor in "AB":
            weight = loaded[f"base_model.model.{layer}.lora_{factor}.weight"]
            assert weight.equal(checkpoint.tensors[f"{layer}.{factor}"][slot]), (layer, factor)


def test_export_refuses_a_folder_that_is_not_empty(run_path, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert main(["export", str(run_path), "--member", "merged", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
