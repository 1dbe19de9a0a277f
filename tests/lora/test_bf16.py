"""A population under a bf16 host: finite outputs close to fp32 on both kernels, fp32 gradients
for the factors, and a PEFT export that stays fp32 and still reproduces evolora's logits."""

from __future__ import annotations

import pytest
import torch
from lora_models import make_tokens, randomize, tiny_llama
from peft import PeftModel
from safetensors.torch import load_file

from evolora.hosts.precision import run_in
from evolora.lora import LoRAPopulation, export_peft


def bf16(model):
    """The host's bf16 context (autocast, bf16 weight copies, fp32 head) for a bare model."""
    return run_in(model, "bf16")


@pytest.mark.parametrize("kernel", ["gather", "segmented"])
@pytest.mark.parametrize("layout", ["grouped", "interleaved"])
def test_population_forward_under_bf16_is_finite_and_near_fp32(kernel, layout):
    model = tiny_llama()
    pop = LoRAPopulation(model, n=4, rank=4, alpha=8, seed=0, kernel=kernel)
    randomize(pop)
    tokens = make_tokens()
    ids = ([0, 0, 1, 1, 2, 2, 3, 3] if layout == "grouped" else [0, 1, 2, 3, -1, 1, 2, 3])
    tokens = tokens[: len(ids)] if len(tokens) >= len(ids) else tokens.repeat(len(ids), 1)[
        : len(ids)]
    with torch.no_grad(), pop.route(ids):
        exact = model(tokens).logits
        with bf16(model):
            fast = model(tokens).logits
            step = model(tokens[:, -1:]).logits  # one-token rows: the decode shape
    assert torch.isfinite(fast).all() and torch.isfinite(step).all()
    assert fast.dtype == torch.float32
    assert (fast - exact).abs().max() < 0.05 * exact.abs().max()
    for name in pop.layer_names:
        assert pop.A[name].dtype == torch.float32 and pop.B[name].dtype == torch.float32


def test_factors_get_fp32_gradients_under_bf16():
    model = tiny_llama()
    pop = LoRAPopulation(model, n=2, rank=4, alpha=8, seed=0)
    randomize(pop)
    name = pop.layer_names[0]
    pop.B[name].requires_grad_(True)
    tokens = make_tokens()[:2]
    with pop.route([0, 1]), bf16(model):
        loss = model(tokens).logits.float().logsumexp(-1).mean()
    loss.backward()
    grad = pop.B[name].grad
    assert grad is not None and grad.dtype == torch.float32
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_exported_adapter_is_fp32_and_reproduces_evolora_logits(tmp_path):
    model = tiny_llama()
    pop = LoRAPopulation(model, n=3, rank=4, alpha=8, seed=0)
    randomize(pop)
    tokens = make_tokens()
    with torch.no_grad(), pop.route([1] * len(tokens)), bf16(model):
        model(tokens)  # a bf16 forward first: it must leave nothing behind in the factors
    folder = export_peft(pop, 1, tmp_path / "adapter")
    saved = load_file(str(folder / "adapter_model.safetensors"))
    assert saved and all(t.dtype == torch.float32 for t in saved.values())
    peft_model = PeftModel.from_pretrained(tiny_llama(), str(folder)).eval()
    with torch.no_grad():
        theirs = peft_model(tokens).logits
        with pop.route([1] * len(tokens)):
            ours = model(tokens).logits
    assert (theirs - ours).abs().max() < 1e-5
