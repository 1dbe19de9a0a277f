"""A population on a Host: one generate/loglik call serves every adapter, KV cache included.

The reference for adapter i is an ordinary host whose weights have ΔW_i merged in (W + ΔW_i),
so the population's batched path is checked against plain matrices, not against itself.
"""

from __future__ import annotations

import copy

import pytest
import torch
from lora_models import randomize
from transformers import LlamaConfig, LlamaForCausalLM

from evolora.errors import EvoloraError
from evolora.hosts import AdapterRouter
from evolora.hosts.host import Host
from evolora.hosts.tokenizer import train_tokenizer
from evolora.lora import LoRAPopulation

TEXT = ["math: 3+4*2=11\n", "sort asc: pear apple fig =apple fig pear\n",
        "logic: T and F =false\n", "seq: 2 4 6 8 =10\n", "To be, or not to be\n"] * 20
PROMPTS = ["math: 3+4*2=", "To be", "sort asc: pear fig =", "logic: T and F =", "seq: 2 4 6 ="]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXT, vocab_size=300)


@pytest.fixture
def host(tokenizer) -> Host:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, initializer_range=0.3,  # decisive argmax
    )
    return Host(LlamaForCausalLM(config), copy.deepcopy(tokenizer), "tiny")


def merged_host(host: Host, population: LoRAPopulation, member: int) -> Host:
    """A plain host (no population) whose target weights are W + ΔW_member."""
    model = copy.deepcopy(host.model)
    population_free = {name: module.base for name, module in model.named_modules()
                       if hasattr(module, "base")}
    for name, linear in population_free.items():
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, linear)
        if member >= 0:
            linear.weight.data += population.delta(member, name)
    return Host(model, host.tokenizer, f"merged-{member}")


@pytest.fixture
def population(host) -> LoRAPopulation:
    pop = LoRAPopulation(host, n=3, rank=4, alpha=8)
    randomize(pop, seed=5, scale=0.4)
    return pop


IDS = [0, 1, -1, 2, 0]


def test_population_is_an_adapter_router(population):
    assert isinstance(population, AdapterRouter)
    assert population.base_name == "tiny"


@pytest.mark.parametrize(("use_cache", "stop"), [(True, ()), (False, ()), (True, ("e", "a"))])
def test_generate_rows_equal_hosts_with_that_adapter_merged(host, population, use_cache, stop):
    # With stops, rows finish early and leave the batch: the routing follows the rows that stay.
    ours = host.generate(PROMPTS, max_new_tokens=8, stop=stop, adapters=population,
                         adapter_ids=IDS, use_cache=use_cache)
    references = {}
    for row, member in enumerate(IDS):
        if member not in references:
            references[member] = merged_host(host, population, member).generate(
                PROMPTS, max_new_tokens=8, stop=stop)
        assert ours[row] == references[member][row], (row, member)
    assert any(references[m] != references[-1] for m in (0, 1, 2))  # adapters change the text


def test_cached_and_uncached_generation_agree_with_a_population(host, population):
    kwargs = {"max_new_tokens": 10, "stop": (), "adapters": population, "adapter_ids": IDS}
    assert host.generate(PROMPTS, **kwargs) == host.generate(PROMPTS, use_cache=False, **kwargs)


def test_loglik_rows_equal_hosts_with_that_adapter_merged(host, population):
    targets = ["11", " or not", "fig pear", "false", "8"]
    ours = host.loglik(PROMPTS, targets, adapters=population, adapter_ids=IDS, batch_size=2)
    for row, member in enumerate(IDS):
        reference = merged_host(host, population, member).loglik(PROMPTS, targets)[row]
        assert float(ours[row]) == pytest.approx(float(reference), abs=1e-4), (row, member)
    bare = host.loglik(PROMPTS, targets)
    assert float((ours - bare).abs().max()) > 1e-2


def test_host_rejects_ids_that_do_not_fit_the_population(host, population):
    with pytest.raises(EvoloraError, match=r"\[-1, 2\]"):
        host.generate(PROMPTS[:2], adapters=population, adapter_ids=[0, 3])
    with pytest.raises(EvoloraError, match="one adapter id per prompt"):
        host.loglik(PROMPTS[:2], ["a", "b"], adapters=population, adapter_ids=[0])
