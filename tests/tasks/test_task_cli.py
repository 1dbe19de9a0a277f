"""`evolora tasks list | sample | export` through the real CLI entry point."""

from __future__ import annotations

import json

from evolora.cli import main
from evolora.tasks import family_names, load_dataset, score, split_of


def test_list_shows_every_family(capsys) -> None:
    assert main(["tasks", "list"]) == 0
    out = capsys.readouterr().out
    for name in family_names():
        assert name in out
    assert "math: " in out and " -> " in out


def test_sample_shows_holdout_examples_reproducibly(capsys) -> None:
    args = ["tasks", "sample", "math", "--difficulty", "2", "--n", "4", "--split", "holdout"]
    assert main([*args, "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert main([*args, "--seed", "3"]) == 0
    assert capsys.readouterr().out == first
    assert first.count("math: ") == 4 and "train" not in first


def test_bad_family_difficulty_and_split_exit_with_code_2(capsys) -> None:
    assert main(["tasks", "sample", "maths"]) == 2
    assert "valid families are" in capsys.readouterr().err
    assert main(["tasks", "sample", "math", "--difficulty", "6"]) == 2
    assert "valid values are 1, 2, 3, 4, 5" in capsys.readouterr().err
    assert main(["tasks", "sample", "math", "--split", "dev"]) == 2
    assert "valid splits are train, holdout" in capsys.readouterr().err


def test_export_writes_a_dataset_that_loads_back_and_scores(tmp_path, capsys) -> None:
    out = tmp_path / "easy.jsonl"
    args = ["tasks", "export", "--grid", "easy", "--n", "200", "--split", "train", "--seed", "1"]
    assert main([*args, str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 200
    assert {r["difficulty"] for r in records} == {1, 2}
    assert {r["family"] for r in records} == set(family_names())
    examples = load_dataset(out)
    assert all(split_of(e) == "train" == e.meta["split"] for e in examples)
    assert all(score(e, e.answer) == 1.0 for e in examples)
    assert main(["tasks", "export", "--grid", "nope", str(out)]) == 2
    assert "valid grids are" in capsys.readouterr().err


def test_export_refuses_to_overwrite_without_force(tmp_path, capsys) -> None:
    out = tmp_path / "tasks.jsonl"
    out.write_text("precious\n")
    assert main(["tasks", "export", str(out), "--n", "3"]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert main(["tasks", "export", str(out), "--n", "3", "--force"]) == 0
    assert len(out.read_text().splitlines()) == 3
