"""Training attention: eager and sdpa give the same loss and gradients; auto follows the probe."""

from __future__ import annotations

import json

import pytest
import torch

from evolora.errors import EvoloraError
from evolora.hosts import attention, load_host
from evolora.hosts.train import build_model, forward_backward, train_host
from evolora.hosts.train_config import HostTrainConfig, ModelShape

SHAPE = ModelShape(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                   max_positions=64)


def _loss_logits_grads(model, rows, weights, precision: str, name: str):
    attention.set_attention(model, name)
    model.zero_grad(set_to_none=True)
    loss = forward_backward(model, rows, weights, precision)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits = model(input_ids=rows[:, :-1]).logits.float()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return loss.item(), logits, grads


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 1e-5), ("bf16", 3e-2)])
def test_eager_and_sdpa_train_alike(tiny_tokenizer, precision, tolerance):
    torch.manual_seed(0)
    model = build_model(SHAPE, tiny_tokenizer).train()
    gen = torch.Generator().manual_seed(1)
    rows = torch.randint(3, len(tiny_tokenizer), (3, 33), generator=gen)
    weights = torch.rand(rows.shape, generator=gen)
    loss_s, logits_s, grads_s = _loss_logits_grads(model, rows, weights, precision, "sdpa")
    loss_e, logits_e, grads_e = _loss_logits_grads(model, rows, weights, precision, "eager")
    assert loss_e == pytest.approx(loss_s, rel=tolerance)
    scale = logits_s.abs().max()
    assert (logits_e - logits_s).abs().max() <= tolerance * scale
    for name, grad in grads_s.items():
        assert (grads_e[name] - grad).abs().max() <= tolerance * grad.abs().max() + 1e-8, name


def test_auto_follows_the_probe_and_named_kernels_skip_it(tiny_tokenizer, monkeypatch):
    model = build_model(SHAPE, tiny_tokenizer)
    rows = torch.zeros(2, 9, dtype=torch.long)
    for seconds, expected in (({"sdpa": 2.0, "eager": 1.0}, "eager"),
                              ({"sdpa": 1.0, "eager": 1.0}, "sdpa"),
                              ({"sdpa": 1.0, "eager": 2.0}, "sdpa")):
        monkeypatch.setattr(attention, "probe_attention", lambda *_, s=seconds: s)
        chosen = attention.resolve_attention("auto", model, rows, lambda r: None)
        assert chosen.name == expected
        assert model.config._attn_implementation == expected
    monkeypatch.setattr(attention, "probe_attention", lambda *_: pytest.fail("probed"))
    assert attention.resolve_attention("eager", model, rows, lambda r: None).name == "eager"
    with pytest.raises(EvoloraError, match="attention must be one of auto, sdpa, eager"):
        attention.resolve_attention("flash", model, rows, lambda r: None)


def test_the_probe_times_both_kernels_and_leaves_no_gradients(tiny_tokenizer):
    model = build_model(SHAPE, tiny_tokenizer).train()
    rows = torch.randint(3, len(tiny_tokenizer), (2, 17))
    weights = torch.ones(rows.shape)
    seconds = attention.probe_attention(
        model, rows, lambda r: forward_backward(model, r, weights, "fp32"), repeats=1)
    assert set(seconds) == {"sdpa", "eager"}
    assert all(0 <= s < float("inf") for s in seconds.values())
    assert all(p.grad is None for p in model.parameters())


def test_a_run_records_its_kernel_and_exports_the_default_one(tmp_path, tiny_text):
    config = HostTrainConfig.model_validate({
        "seed": 1, "model": {"hidden_size": 32, "intermediate_size": 64, "num_layers": 1,
                             "num_heads": 2, "max_positions": 64},
        "tokenizer": {"vocab_size": 320, "task_lines": 100}, "data": {"seq_len": 48},
        "optim": {"steps": 2, "batch_size": 2, "warmup_steps": 1, "checkpoint_every": 2,
                  "attention": "eager"}})
    export = train_host(config, out=tmp_path, texts=tiny_text)
    summary = json.loads((export.parent / "summary.jsonl").read_text().splitlines()[-1])
    assert summary["attention"] == "eager"
    assert "eager" not in (export / "config.json").read_text()
    assert load_host(str(export)).model.config._attn_implementation == "sdpa"
