"""Routed adapter sets on disk: each cell's examples go through its own adapter, exactly as the
population that wrote them would send them; and `evaluate --adapter` scores with them."""

from __future__ import annotations

import json

import pytest
import torch

from evolora.cli import main
from evolora.errors import EvoloraError
from evolora.hosts import load_host
from evolora.hosts.evaluate import evaluate
from evolora.hosts.routed import load_adapters, write_routing
from evolora.lora import LoRAPopulation, export_peft
from evolora.tasks import Example

PROMPTS = [
    ("math: 1+2=", "math", 1),
    ("logic: T and F =", "logic", 1),
    ("seq: 1 2 3 =", None, None),
]


@pytest.fixture
def routed_folder(llama_dir, tmp_path):
    """Two random adapters 'a' and 'b' on the tiny Llama; math:1 goes to 'a', the rest to 'b'."""
    host = load_host(str(llama_dir))
    population = LoRAPopulation(host, n=2, rank=2, targets=["q_proj", "v_proj"], seed=0)
    generator = torch.Generator().manual_seed(1)
    for name in population.layer_names:
        population.B[name].copy_(torch.randn(population.B[name].shape, generator=generator))
    for slot, name in enumerate("ab"):
        export_peft(population, slot, tmp_path / "set" / name)
    write_routing(tmp_path / "set", {"math:1": "a"}, "b", ["a", "b"])
    prompts = [p for p, _, _ in PROMPTS]
    expected = host.generate(prompts, max_new_tokens=6, adapters=population, adapter_ids=[0, 1, 1])
    other = host.generate(prompts, max_new_tokens=6, adapters=population, adapter_ids=[1, 0, 0])
    assert expected != other  # the routing matters for these prompts
    population.detach()
    return tmp_path / "set", expected


def test_a_routed_set_sends_each_cell_through_its_adapter(llama_dir, routed_folder):
    folder, expected = routed_folder
    host = load_host(str(llama_dir))
    routed = load_adapters(host, folder)
    ids = [routed.slot_for(family, difficulty) for _, family, difficulty in PROMPTS]
    assert ids == [routed.slots["a"], routed.slots["b"], routed.slots["b"]]
    prompts = [p for p, _, _ in PROMPTS]
    got = host.generate(prompts, max_new_tokens=6, adapters=routed.population, adapter_ids=ids)
    assert got == expected


def test_evaluate_with_a_routed_set_scores_its_completions(llama_dir, routed_folder):
    folder, expected = routed_folder
    host = load_host(str(llama_dir))
    examples = [Example(p, c.strip() or "x", f or "custom", d or 1, {}) for (p, f, d), c in
                zip(PROMPTS[:2], expected[:2], strict=True)]  # fmt: skip
    result = evaluate(host, examples, max_new_tokens=6, routed=load_adapters(host, folder))
    assert result["accuracy"] == 1.0  # the answers are the routed set's own completions


def test_evaluate_command_takes_an_adapter(llama_dir, routed_folder, tmp_path):
    folder, _ = routed_folder
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": p, "answer": "1"}) for p, _, _ in PROMPTS))
    for adapter in (folder, folder / "a"):  # a routed set, and one plain PEFT adapter
        out = tmp_path / f"{adapter.name}.json"
        argv = ["evaluate", "--host", str(llama_dir), "--dataset", str(data), "--adapter",
                str(adapter), "--max-new-tokens", "2", "--out", str(out)]  # fmt: skip
        assert main(argv) == 0
        result = json.loads(out.read_text())
        assert result["n"] == 3 and result["adapter"] == str(adapter.resolve())


def test_a_broken_routing_table_is_one_sentence(llama_dir, routed_folder):
    folder, _ = routed_folder
    (folder / "routing.json").write_text(json.dumps(
        {"format": "evolora-routed-adapters", "version": 1, "default": "b",
         "routes": {"math:1": "zzz"}, "adapters": ["a", "b"]}))  # fmt: skip
    with pytest.raises(EvoloraError, match="zzz"):
        load_adapters(load_host(str(llama_dir)), folder)
