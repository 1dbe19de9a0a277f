"""load_host on tiny Llama and Qwen2 folders, and one clear EvoloraError per kind of bad input."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from evolora.errors import EvoloraError
from evolora.hosts import Host, load_host


@pytest.mark.parametrize("which", ["llama", "qwen2"])
def test_load_host_from_folder(which, llama_dir, qwen_dir, tiny_tokenizer):
    folder = llama_dir if which == "llama" else qwen_dir
    host = load_host(str(folder))
    assert isinstance(host, Host)
    assert type(host.model).__name__ == (
        "LlamaForCausalLM" if which == "llama" else "Qwen2ForCausalLM"
    )
    assert not host.model.training
    assert all(not p.requires_grad for p in host.model.parameters())
    assert host.tokenizer.padding_side == "left"
    assert host.tokenizer.pad_token_id == tiny_tokenizer.pad_token_id
    assert host.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert host.context == 64
    assert host.name == str(folder)


def test_device_option_is_honoured(llama_dir):
    assert load_host(str(llama_dir), device="cpu").device == torch.device("cpu")


def _copy(folder, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


def test_file_instead_of_folder(tmp_path):
    path = tmp_path / "model.txt"
    path.write_text("hello")
    with pytest.raises(EvoloraError, match="is a file"):
        load_host(str(path))


def test_folder_without_config_is_not_a_model(tmp_path):
    with pytest.raises(EvoloraError, match=r"not a model folder: it has no config\.json"):
        load_host(str(tmp_path))


def test_folder_without_weights_is_not_a_model(llama_dir, tmp_path):
    folder = _copy(llama_dir, tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(EvoloraError, match="no weights"):
        load_host(str(folder))


def test_masked_lm_is_not_causal(tmp_path, tiny_tokenizer):
    config = BertConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    BertForMaskedLM(config).save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    with pytest.raises(EvoloraError, match="BertForMaskedLM, which is not a causal language model"):
        load_host(str(tmp_path))


def test_seq2seq_model_type_is_not_causal(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(EvoloraError, match="model_type 't5', which is not a causal"):
        load_host(str(tmp_path))


def test_missing_tokenizer(llama_dir, tmp_path):
    folder = _copy(llama_dir, tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    with pytest.raises(EvoloraError, match="has no tokenizer"):
        load_host(str(folder))


def test_corrupt_safetensors(llama_dir, tmp_path):
    folder = _copy(llama_dir, tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(EvoloraError, match="is not a valid safetensors file"):
        load_host(str(folder))


def test_garbage_safetensors_header(llama_dir, tmp_path):
    folder = _copy(llama_dir, tmp_path)
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(EvoloraError, match="is not a valid safetensors file"):
        load_host(str(folder))


def test_unreadable_config(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(EvoloraError, match=r"config\.json is not valid JSON"):
        load_host(str(tmp_path))


def test_hub_id_missing_from_cache_says_where_it_looked(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(EvoloraError) as problem:
        load_host("evolora-test-org/no-such-model")
    message = str(problem.value)
    assert "not in the local Hugging Face cache" in message
    assert str(tmp_path / "hub") in message
    assert "pass the path of a local model folder" in message


def test_hub_id_found_in_cache(llama_dir, tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--tiny-org--tiny-llama" / "snapshots" / ("0" * 40)
    shutil.copytree(llama_dir, snapshot)
    (cache / "models--tiny-org--tiny-llama" / "refs").mkdir()
    (cache / "models--tiny-org--tiny-llama" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    host = load_host("tiny-org/tiny-llama")
    assert type(host.model).__name__ == "LlamaForCausalLM"
    assert host.name == "tiny-org/tiny-llama"


def test_spec_that_is_neither_folder_nor_id():
    with pytest.raises(EvoloraError, match="neither 'builtin', an existing folder"):
        load_host("not a model spec")
