"""User datasets: JSONL records, line-numbered errors, and Hugging Face folders loaded offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evolora.errors import EvoloraError
from evolora.tasks import load_dataset, score


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


RECORDS = [
    {"prompt": "capital of France =", "answer": "Paris", "scorer": "contains"},
    {"prompt": "half of one =", "answer": 0.5, "scorer": "numeric"},
    {"prompt": "sort asc: 3 1 2 =", "answer": "1 2 3", "family": "sorting", "difficulty": 1},
    {"prompt": "echo =", "answer": "echo", "meta": {"origin": "hand"}},
]


def test_jsonl_records_become_examples_with_their_scorers(tmp_path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(r) for r in RECORDS] + [""])
    paris, half, sort, echo = load_dataset(path)
    assert (paris.prompt, paris.answer, paris.family, paris.difficulty) == (
        "capital of France =",
        "Paris",
        "dataset",
        0,
    )
    assert paris.meta["scorer"] == "contains" and paris.meta["source"] == f"{path}, line 1"
    assert score(paris, "It is Paris.") == 1.0
    assert half.answer == "0.5" and score(half, "0.50") == 1.0
    # a registered family without a scorer is judged by the family (partial credit for sorting)
    assert "scorer" not in sort.meta and score(sort, "1 3 2") == pytest.approx(1 / 3)
    assert echo.meta["scorer"] == "exact" and echo.meta["origin"] == "hand"
    assert score(echo, "echo") == 1.0 and score(echo, "echo!") == 0.0


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"prompt": "a", "answer": ', "not valid JSON"),
        ('["prompt", "answer"]', "expected a JSON object"),
        ('{"answer": "x"}', "'prompt' must be a non-empty string"),
        ('{"prompt": "a"}', "'answer' must be a string or a number"),
        ('{"prompt": "a", "answer": "x", "scorrer": "exact"}', "unknown field.*'scorrer'"),
        ('{"prompt": "a", "answer": "x", "scorer": "fuzzy"}', "valid scorers are exact"),
        ('{"prompt": "a", "answer": "x", "difficulty": 9}', "'difficulty' must be one of 1, 2"),
        ('{"prompt": "a", "answer": "x\\ny"}', "spans several lines"),
        ('{"prompt": "a", "answer": "x", "meta": [1]}', "'meta' must be a JSON object"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line, message) -> None:
    good = json.dumps(RECORDS[0])
    path = write_jsonl(tmp_path / "bad.jsonl", [good, good, bad_line, good])
    with pytest.raises(EvoloraError, match=message) as caught:
        load_dataset(str(path))
    assert f"{path}, line 3:" in str(caught.value)


def test_missing_empty_and_binary_files_are_explained(tmp_path) -> None:
    with pytest.raises(EvoloraError, match="does not exist"):
        load_dataset(tmp_path / "nope.jsonl")
    with pytest.raises(EvoloraError, match="holds no records"):
        load_dataset(write_jsonl(tmp_path / "empty.jsonl", [""]))
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(EvoloraError, match="not UTF-8"):
        load_dataset(binary)


def test_hf_dataset_saved_to_disk_loads_offline(tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [
        {"prompt": "2+2=", "answer": "4", "scorer": "numeric"},
        {"prompt": "hi =", "answer": "hi"},
    ]
    rows = [{"scorer": None, **r} for r in rows]  # a column exists in every row
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "flat"))
    splits = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[:1])}
    )
    splits.save_to_disk(str(tmp_path / "dict"))

    flat = load_dataset(f"hf:{tmp_path / 'flat'}")
    assert [e.answer for e in flat] == ["4", "hi"]
    assert flat[0].meta["scorer"] == "numeric" and score(flat[0], "4.0") == 1.0
    assert flat[1].meta["scorer"] == "exact" and flat[1].meta["source"].endswith("row 2")
    test = load_dataset(f"hf:{tmp_path / 'dict'}:test")
    assert [e.prompt for e in test] == ["2+2="]
    with pytest.raises(EvoloraError, match="no split 'validation'; its splits are train, test"):
        load_dataset(f"hf:{tmp_path / 'dict'}:validation")
    with pytest.raises(EvoloraError, match="saved as a single split"):
        load_dataset(f"hf:{tmp_path / 'flat'}:test")


def test_hf_dataset_bad_row_and_missing_dataset_are_explained(tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list([{"question": "q", "answer": "a"}]).save_to_disk(str(tmp_path / "q"))
    with pytest.raises(EvoloraError, match=r"row 1: unknown field.*'question'"):
        load_dataset(f"hf:{tmp_path / 'q'}")
    with pytest.raises(EvoloraError, match="nothing is downloaded"):
        load_dataset("hf:evolora-no-such-org/no-such-dataset")
    with pytest.raises(EvoloraError, match="names no dataset"):
        load_dataset("hf:")


def test_hf_folder_of_jsonl_files_loads_offline(tmp_path, monkeypatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "files"
    folder.mkdir()
    write_jsonl(folder / "test.jsonl", [json.dumps({"prompt": "a =", "answer": "b"})])
    (example,) = load_dataset(f"hf:{folder}:test")
    assert (example.prompt, example.answer, example.meta["scorer"]) == ("a =", "b", "exact")
    with pytest.raises(EvoloraError, match="Unknown split"):
        load_dataset(f"hf:{folder}:validation")
