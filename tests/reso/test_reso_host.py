"""A saved Reso model is a host like any other: load_host reads it, a LoRA population adapts it."""

import pytest
import torch
from reso_helpers import tiny, tokenizer

from evolora.errors import EvoloraError
from evolora.hosts import load_host
from evolora.lora import LoRAPopulation


@pytest.fixture
def saved(tmp_path):
    model = tiny()
    model.save_pretrained(tmp_path)
    tokenizer().save_pretrained(tmp_path)
    return tmp_path


def test_load_host_reads_a_reso_folder(saved):
    host = load_host(str(saved))
    assert type(host.model).__name__ == "ResoForCausalLM"
    assert len(host.generate(["math: 1+2=", "ROMEO:"], max_new_tokens=4)) == 2


def test_a_lora_population_adapts_the_reso_host(saved):
    host = load_host(str(saved))
    population = LoRAPopulation(host, n=2, rank=2)
    assert {name.rsplit(".", 1)[-1] for name in population.layer_names} >= {"q_proj", "down_proj"}
    prompts, targets = ["ROMEO:"] * 3, [" my lord"] * 3
    bare = host.loglik(prompts, targets, adapters=population, adapter_ids=[-1, 0, 1])
    assert torch.allclose(bare[0], bare[1]) and torch.allclose(bare[0], bare[2])  # B = 0
    with torch.no_grad():
        for name in population.layer_names:
            population.B[name][1].normal_(std=0.5)
    adapted = host.loglik(prompts, targets, adapters=population, adapter_ids=[-1, 0, 1])
    assert torch.allclose(adapted[0], bare[0]) and torch.allclose(adapted[1], bare[1])
    assert not torch.allclose(adapted[2], bare[2])
    texts = host.generate(prompts, max_new_tokens=5, adapters=population, adapter_ids=[-1, 0, 1])
    assert texts[0] == texts[1]


def test_a_folder_with_a_broken_reso_config_is_one_sentence(saved):
    config = (saved / "config.json").read_text()
    (saved / "config.json").write_text(config.replace('"agency": {', '"agency": {"bogus": 1, '))
    with pytest.raises(EvoloraError) as problem:
        load_host(str(saved))
    assert "\n" not in str(problem.value)
