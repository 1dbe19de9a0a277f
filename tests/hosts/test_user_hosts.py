"""What a user's own model and machine can get wrong: a device that is not there, a tokenizer
larger than the embedding, GPT-2-style Conv1D layers; and evaluate's own files and datasets."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from evolora.cli import main
from evolora.errors import EvoloraError
from evolora.hosts import load_host
from evolora.hosts.loading import check_adaptable, pick_device


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_missing_cuda_device_is_one_sentence(no_cuda, device):
    with pytest.raises(EvoloraError, match="needs CUDA"):
        pick_device(device)


def test_a_cuda_index_past_the_last_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(EvoloraError, match="has 1 CUDA device"):
        pick_device("cuda:1")


@pytest.mark.parametrize(
    "argv",
    [
        ["host", "info", "{host}", "--device", "cuda"],
        ["evaluate", "--host", "{host}", "--grid", "easy", "--n", "1", "--device", "cuda:1"],
    ],
)
def test_commands_on_a_missing_cuda_device_exit_2_in_one_line(no_cuda, llama_dir, argv, capsys):
    assert main([part.format(host=llama_dir) for part in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs CUDA" in err and "\n" not in err


def test_a_tokenizer_larger_than_the_embedding_is_refused_at_load(tiny_tokenizer, tmp_path):
    config = LlamaConfig(
        vocab_size=len(tiny_tokenizer) - 40,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    with pytest.raises(EvoloraError, match="embedding has"):
        load_host(str(tmp_path))


def test_gpt2_conv1d_layers_are_refused_in_one_sentence(tiny_tokenizer, tmp_path, capsys):
    config = GPT2Config(vocab_size=len(tiny_tokenizer), n_embd=16, n_layer=1, n_head=2,
                        n_positions=64)  # fmt: skip
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2")
    tiny_tokenizer.save_pretrained(tmp_path / "gpt2")
    host = load_host(str(tmp_path / "gpt2"))  # loads (and evaluates) fine ...
    with pytest.raises(EvoloraError, match="Conv1D"):
        check_adaptable(host.model, "gpt2")  # ... but cannot carry adapters
    argv = ["run", "-c", "debug", "--host", str(tmp_path / "gpt2"), "-o", str(tmp_path / "runs")]
    assert main(argv) == 2
    assert "Conv1D" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _dataset(path, n):
    path.write_text(
        "\n".join(json.dumps({"prompt": f"add: {i}+1=", "answer": str(i + 1)}) for i in range(n))
    )
    return path


def test_evaluate_scores_a_whole_dataset_by_default(llama_dir, tmp_path):
    data = _dataset(tmp_path / "data.jsonl", 45)
    out = tmp_path / "result.json"
    assert main(["evaluate", "--host", str(llama_dir), "--dataset", str(data),
                 "--max-new-tokens", "1", "--out", str(out)]) == 0  # fmt: skip
    assert json.loads(out.read_text())["n"] == 45


def test_evaluate_refuses_to_overwrite_its_out_file_without_force(llama_dir, tmp_path, capsys):
    data = _dataset(tmp_path / "data.jsonl", 2)
    out = tmp_path / "result.json"
    out.write_text("precious")
    argv = ["evaluate", "--host", str(llama_dir), "--dataset", str(data),
            "--max-new-tokens", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "precious"
    assert main([*argv, "--force"]) == 0
    assert json.loads(out.read_text())["n"] == 2


def test_generation_uses_the_current_cache_argument(llama_dir):
    import warnings

    host = load_host(str(llama_dir))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        host.generate(["math: 1+1="], max_new_tokens=3)
    assert not [w for w in caught if "past_key_values" in str(w.message)]
