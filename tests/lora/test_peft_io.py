"""PEFT interop: exported members reload in PEFT with identical logits, and PEFT adapters import."""

from __future__ import annotations

import json

import pytest
import torch
from lora_models import tiny_llama
from peft import LoraConfig, PeftModel, get_peft_model

from evolora.errors import EvoloraError
from evolora.lora import LoRAPopulation, export_peft, import_peft


def population_logits(model, population, member, tokens) -> torch.Tensor:
    with torch.no_grad(), population.route([member] * len(tokens)):
        return model(tokens).logits


def test_exported_member_reloads_in_peft_with_identical_logits(model, population, tokens, tmp_path):
    folder = export_peft(population, 2, tmp_path / "adapter", base_model_name_or_path="tiny")
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8 and config["peft_type"] == "LORA"
    peft_model = PeftModel.from_pretrained(tiny_llama(), str(folder)).eval()
    with torch.no_grad():
        theirs = peft_model(tokens).logits
    ours = population_logits(model, population, 2, tokens)
    assert (theirs - ours).abs().max() < 1e-5
    assert (theirs - tiny_llama()(tokens).logits).abs().max() > 1e-2  # the adapter mattered


def test_peft_adapter_imports_into_a_slot(model, tokens, tmp_path):
    """A PEFT adapter on a subset of layers with another alpha gives the same logits in a slot."""
    torch.manual_seed(8)
    config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "down_proj"])
    peft_model = get_peft_model(tiny_llama(), config).eval()
    for name, param in peft_model.named_parameters():
        if "lora_" in name:
            param.data.normal_(0, 0.2)
    peft_model.save_pretrained(str(tmp_path / "theirs"))
    with torch.no_grad():
        theirs = peft_model(tokens).logits
    population = LoRAPopulation(model, n=3, rank=4, alpha=8)
    import_peft(tmp_path / "theirs", population, 1)
    ours = population_logits(model, population, 1, tokens)
    assert (theirs - ours).abs().max() < 1e-5
    assert float(population.delta(1, "model.layers.0.self_attn.k_proj").abs().max()) == 0.0


def test_export_then_import_round_trips(population, tmp_path):
    export_peft(population, 0, tmp_path / "a")
    import_peft(tmp_path / "a", population, 3)
    for name in population.layer_names:
        assert torch.equal(population.A[name][3], population.A[name][0])
        assert torch.equal(population.B[name][3], population.B[name][0])


def test_import_rejects_mismatches_with_clear_errors(population, tmp_path):
    export_peft(population, 0, tmp_path / "a", base_model_name_or_path="org/tiny-llama")
    with pytest.raises(EvoloraError, match="made for base model 'org/tiny-llama'"):
        population.base_name = "org/other-model"
        import_peft(tmp_path / "a", population, 1)
    population.base_name = None

    other_rank = LoRAPopulation(tiny_llama(), n=1, rank=2, alpha=4)
    with pytest.raises(EvoloraError, match="rank r=4 but the population has rank 2"):
        import_peft(tmp_path / "a", other_rank, 0)

    wider = LoRAPopulation(tiny_llama(hidden=48), n=1, rank=4, alpha=8)
    shapes = r"layers\.0\.mlp\.down_proj: got A \(4, 56\).*expected A \(4, 88\)"
    with pytest.raises(EvoloraError, match=shapes):
        import_peft(tmp_path / "a", wider, 0)

    attention_only = LoRAPopulation(tiny_llama(), n=1, rank=4, targets=["q_proj", "k_proj"])
    with pytest.raises(EvoloraError, match=r"does not have.*targets q_proj, k_proj"):
        import_peft(tmp_path / "a", attention_only, 0)

    with pytest.raises(EvoloraError, match=r"adapter_config\.json is missing"):
        import_peft(tmp_path, population, 0)

    config_path = tmp_path / "a" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(EvoloraError, match="use_dora=True"):
        import_peft(tmp_path / "a", population, 0)
    (tmp_path / "a" / "adapter_model.safetensors").write_bytes(b"not a tensor file")
    config_path.write_text(json.dumps(config))
    with pytest.raises(EvoloraError, match="not a readable safetensors file"):
        import_peft(tmp_path / "a", population, 0)
