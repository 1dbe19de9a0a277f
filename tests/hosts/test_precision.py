"""The precision policy: what "auto" picks from the (simulated) probes, what a bf16 host records,
and that bf16 forwards stay finite and close to fp32 while the fp32 weights are left untouched."""

from __future__ import annotations

import pytest
import torch

from evolora.errors import EvoloraError
from evolora.hosts import load_host
from evolora.hosts import precision as policy
from evolora.hosts.generation import preallocated_cache
from evolora.hosts.precision import Precision, Probe, resolve_precision, with_generation_probe

PROMPTS = ["math: 3+4*2=", "To be, or not", "sort asc: pear apple fig =", "logic: T and F ="]
TARGETS = ["11", " to be", "apple fig pear", "false"]


@pytest.fixture
def probe(monkeypatch):
    """Simulate the start-up matmul probe: set `probe.result` to the Probe it should report."""

    class Fake:
        def __init__(self):
            self.result = Probe("cpu", 3.0, 1e-3, "simulated probe")
            self.calls = 0

        def __call__(self, device):
            self.calls += 1
            return self.result

    fake = Fake()
    monkeypatch.setattr(policy, "probe_bf16", fake)
    return fake


def test_auto_falls_back_to_fp32_when_the_probe_says_bf16_is_slow(probe):
    probe.result = Probe("cpu", 0.2, 1e-3, "bf16 emulated")
    assert resolve_precision("auto", "cpu").name == "fp32"
    probe.result = Probe("cpu", 3.0, 1e-3, "bf16 fast")
    assert resolve_precision("auto", "cpu").name == "bf16"


def test_auto_falls_back_to_fp32_when_bf16_results_are_wrong(probe):
    probe.result = Probe("cpu", 5.0, 0.5, "fast but wrong")
    assert resolve_precision("auto", "cpu").name == "fp32"
    with pytest.raises(EvoloraError, match="cannot run correctly"):
        resolve_precision("bf16", "cpu")


def test_fp32_needs_no_probe_and_unknown_names_fail_clearly(probe):
    assert resolve_precision("fp32", "cpu").name == "fp32"
    assert probe.calls == 0
    with pytest.raises(EvoloraError, match="precision must be one of auto, fp32, bf16"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(EvoloraError, match="precision must be one of"):
        load_host("builtin", precision="half")


def test_generation_follows_its_own_decode_probe(probe, monkeypatch, llama_dir):
    model = load_host(str(llama_dir)).model
    forward_bf16 = resolve_precision("auto", "cpu")
    monkeypatch.setattr(policy, "probe_decode", lambda m: 0.8)
    slow = with_generation_probe(forward_bf16, model)
    assert (slow.bf16, slow.generation_bf16) == (True, False)
    assert "0.80x" in slow.reason
    monkeypatch.setattr(policy, "probe_decode", lambda m: 2.0)  # not enough to pay verification
    assert not with_generation_probe(forward_bf16, model).generation_bf16
    monkeypatch.setattr(policy, "probe_decode", lambda m: 3.0)
    assert with_generation_probe(forward_bf16, model).generation_bf16
    forced = resolve_precision("bf16", "cpu")  # an explicit request is never second-guessed
    assert with_generation_probe(forced, model) is forced


def test_the_real_probes_return_measurements(llama_dir):
    found = policy._probe_cpu(torch.device("cpu"))
    assert found.speedup > 0 and found.error < 0.05 and "probe" in found.note
    assert policy.probe_decode(load_host(str(llama_dir)).model, steps=2) > 0


def test_a_bf16_host_records_its_precision(probe, llama_dir):
    host = load_host(str(llama_dir), precision="bf16")
    assert host.precision.name == "bf16" and host.precision.requested == "bf16"
    assert host.precision.record()["precision"] == "bf16"
    assert "bf16" in repr(host)
    probe.result = Probe("cpu", 0.5, 1e-3, "bf16 slow here")
    fallback = load_host(str(llama_dir), precision="auto")
    assert fallback.precision.record() == {
        "precision": "fp32", "precision_generation": "fp32", "precision_requested": "auto",
        "precision_reason": "bf16 slow here"}
    assert load_host(str(llama_dir)).precision.name == "fp32"  # the library default is exact


def test_bf16_outputs_are_finite_and_close_to_fp32(llama_dir):
    fp32 = load_host(str(llama_dir), precision="fp32")
    bf16 = load_host(str(llama_dir), precision="bf16")
    ours, reference = bf16.loglik(PROMPTS, TARGETS), fp32.loglik(PROMPTS, TARGETS)
    assert torch.isfinite(ours).all()
    assert (ours - reference).abs().max() < 0.1 * reference.abs().max()
    texts = bf16.generate(PROMPTS, max_new_tokens=6)
    assert len(texts) == len(PROMPTS) and all(isinstance(t, str) for t in texts)


def test_bf16_rounds_only_the_products_and_keeps_fp32_weights(llama_dir):
    host = load_host(str(llama_dir), precision="bf16")
    before = {name: (p, p.detach().clone()) for name, p in host.model.named_parameters()}
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.no_grad(), host.autocast():
        out = host.model(input_ids=ids)
        attention = host.model.model.layers[0].self_attn
        inner = attention.q_proj.weight.dtype
        between = attention.q_proj(torch.randn(2, host.model.config.hidden_size)).dtype
    assert inner == torch.bfloat16  # inside: a bf16 copy for the matmuls
    assert between == torch.float32  # what flows between the matmuls stays fp32
    assert out.logits.dtype == torch.float32  # the output head ran in fp32
    for name, param in host.model.named_parameters():
        original, values = before[name]
        assert param is original and param.dtype == torch.float32 and torch.equal(param, values)


def test_preallocated_cache_matches_the_growing_cache(llama_dir):
    model = load_host(str(llama_dir)).model
    ids = torch.tensor([[1, 5, 7, 9, 11], [2, 4, 6, 8, 10]])
    logits = {}
    for name, cache in (("grow", None), ("fits", preallocated_cache(16)),
                        ("overflows", preallocated_cache(6))):  # past capacity: concatenation
        from transformers import DynamicCache

        cache = cache if cache is not None else DynamicCache()
        with torch.no_grad():
            model(input_ids=ids[:, :3], past_key_values=cache, use_cache=True)
            steps = [model(input_ids=ids[:, i : i + 1], past_key_values=cache,
                           use_cache=True).logits for i in (3, 4)]
            model(input_ids=ids[:, 4:5], past_key_values=cache, use_cache=True)
            steps.append(model(input_ids=ids[:, 4:5], past_key_values=cache,
                               use_cache=True).logits)
        logits[name] = torch.cat(steps, dim=1)
    assert torch.allclose(logits["fits"], logits["grow"], atol=1e-5)
    assert torch.allclose(logits["overflows"], logits["grow"], atol=1e-5)


def test_precision_value_object_defaults_generation_to_its_name():
    chosen = Precision("bf16", "auto", "why")
    assert chosen.generation_bf16 and chosen.record()["precision_generation"] == "bf16"


def test_a_recorded_precision_is_reused_without_a_probe(probe, llama_dir):
    recorded = Precision("bf16", "auto", "probed once", "fp32").record()
    host = load_host(str(llama_dir), precision=Precision.from_record(recorded))
    assert host.precision.record() == recorded and probe.calls == 0
    with pytest.raises(EvoloraError, match="must name fp32 or bf16"):
        Precision.from_record({"precision": "fp16"})


def test_cli_precision_option(llama_dir, tmp_path, capsys):
    from evolora.cli import main

    assert main(["host", "info", str(llama_dir), "--precision", "bf16"]) == 0
    assert "bf16" in capsys.readouterr().out
    out = tmp_path / "result.json"
    assert main(["evaluate", "--host", str(llama_dir), "--grid", "easy", "--n", "1",
                 "--max-new-tokens", "3", "--precision", "fp32", "--out", str(out)]) == 0
    assert '"precision": "fp32"' in out.read_text()
    assert main(["host", "info", str(llama_dir), "--precision", "half"]) == 2
    assert "precision must be one of" in capsys.readouterr().err
