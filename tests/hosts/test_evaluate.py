"""Evaluation: holdout examples per cell, accuracy bookkeeping, and the CLI commands."""

from __future__ import annotations

import json

import pytest

from evolora.cli import main
from evolora.hosts.evaluate import evaluate, grid_examples, markdown_table
from evolora.tasks import split_of


class OracleHost:
    """Answers every other prompt correctly and the rest wrongly."""

    name = "oracle"

    def __init__(self, examples):
        self.answers = {e.prompt: e.answer for e in examples}
        self.right = {e.prompt for e in examples[::2]}

    def generate(self, prompts, max_new_tokens=32, batch_size=None, **_):
        return [self.answers[p] if p in self.right else "@@" for p in prompts]


def test_grid_examples_are_holdout_and_fill_every_cell():
    examples = grid_examples("easy", n_per_cell=3, seed=1)
    cells = {(e.family, e.difficulty) for e in examples}
    assert len(examples) == 3 * len(cells)
    assert {d for _, d in cells} == {1, 2}
    assert all(split_of(e) == "holdout" for e in examples)
    assert examples == grid_examples("easy", n_per_cell=3, seed=1)


def test_accuracy_per_cell_counts_exact_answers():
    examples = grid_examples("math", n_per_cell=4, seed=0)
    result = evaluate(OracleHost(examples), examples)
    assert result["n"] == 20
    assert result["accuracy"] == 0.5
    assert [c["difficulty"] for c in result["cells"]] == [1, 2, 3, 4, 5]
    assert all(c["n"] == 4 and c["accuracy"] == 0.5 for c in result["cells"])
    assert "| math | 0.50 | 0.50 | 0.50 | 0.50 | 0.50 |" in markdown_table(result)


def test_host_info_command(llama_dir, capsys):
    assert main(["host", "info", str(llama_dir)]) == 0
    shown = capsys.readouterr().out
    assert "LlamaForCausalLM" in shown
    assert "context window" in shown and "64" in shown


def test_evaluate_command_writes_json(llama_dir, tmp_path):
    out = tmp_path / "result.json"
    code = main(
        ["evaluate", "--host", str(llama_dir), "--grid", "easy", "--n", "1",
         "--max-new-tokens", "4", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert result["n"] == len(result["cells"]) == 10  # 5 families x difficulties 1-2
    assert all(0.0 <= c["accuracy"] <= 1.0 for c in result["cells"])
    assert result["source"] == {"grid": "easy", "dataset": None, "split": "holdout"}


def test_evaluate_command_on_a_dataset(llama_dir, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(
        "\n".join(json.dumps({"prompt": f"add: {i}+1=", "answer": str(i + 1)}) for i in range(3))
    )
    out = tmp_path / "result.json"
    assert main(["evaluate", "--host", str(llama_dir), "--dataset", str(data), "--n", "2",
                 "--max-new-tokens", "3", "--out", str(out)]) == 0  # fmt: skip
    assert json.loads(out.read_text())["n"] == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--host", "builtin"],
        ["evaluate", "--grid", "easy", "--dataset", "x.jsonl"],
        ["host", "info", "/no/such/folder/anywhere"],
        ["host", "train"],
    ],
)
def test_bad_command_lines_exit_with_code_2(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0  # one line
