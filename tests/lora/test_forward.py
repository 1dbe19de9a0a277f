"""The batched forward equals PEFT's forward row by row, and -1 rows equal the bare model."""

from __future__ import annotations

import pytest
import torch
from lora_models import make_tokens, randomize, tiny_llama
from peft import LoraConfig, get_peft_model

from evolora.errors import EvoloraError
from evolora.lora import LoRAPopulation

# Routing layouts: scattered rows with unequal segments (padding), equal consecutive blocks of
# some adapters (views), and every adapter once in order (views, no indexing of A and B).
ID_PATTERNS = {
    "scattered": [0, 2, -1, 1, 0, 3],
    "blocks": [1, 1, 3, 3, -1, -1],
    "one_each": [-1, 0, 1, 2, 3, -1],
}


def peft_twin(twin, population: LoRAPopulation):
    """A PEFT model over `twin` holding every member as a named adapter (m0, m1, ...)."""
    config = LoraConfig(r=population.rank, lora_alpha=population.alpha,
                        target_modules=list(population.targets))
    peft_model = get_peft_model(twin, config, adapter_name="m0")
    for i in range(1, population.n):
        peft_model.add_adapter(f"m{i}", config)
    for name, module in peft_model.base_model.model.named_modules():
        if name in population.A:
            for i in range(population.n):
                module.lora_A[f"m{i}"].weight.data.copy_(population.A[name][i])
                module.lora_B[f"m{i}"].weight.data.copy_(population.B[name][i])
    return peft_model.eval()


@pytest.fixture(scope="module")
def reference_rows() -> dict[tuple[int, int], torch.Tensor]:
    """{(row, adapter): logits} from PEFT with that adapter set (or the bare model for -1), one
    row at a time, for the same weights as the `model`/`population`/`tokens` fixtures."""
    population = LoRAPopulation(tiny_llama(), n=4, rank=4, alpha=8, seed=0)
    randomize(population)
    population.detach()
    bare, peft_model = tiny_llama(), peft_twin(tiny_llama(), population)
    tokens = make_tokens()
    rows = {}
    with torch.no_grad():
        for row in range(len(tokens)):
            rows[row, -1] = bare(tokens[row : row + 1]).logits[0]
            for adapter in range(population.n):
                peft_model.set_adapter(f"m{adapter}")
                rows[row, adapter] = peft_model(tokens[row : row + 1]).logits[0]
    return rows


@pytest.mark.parametrize("kernel", ["gather", "segmented"])
@pytest.mark.parametrize("pattern", list(ID_PATTERNS))
def test_rows_match_peft_with_that_rows_adapter(model, population, tokens, reference_rows,
                                                kernel, pattern):
    ids = ID_PATTERNS[pattern]
    population.kernel = kernel
    with torch.no_grad(), population.route(ids):
        batched = model(tokens).logits
    for row, adapter in enumerate(ids):
        assert (batched[row] - reference_rows[row, adapter]).abs().max() < 1e-5, (row, adapter)
    # Adapters really matter here: rows of different adapters differ from the bare model.
    row = next(r for r, adapter in enumerate(ids) if adapter >= 0)
    assert (batched[row] - reference_rows[row, -1]).abs().max() > 1e-2


@pytest.mark.parametrize("ids", [[2, 2, 0, -1, 1], [1, 1, 3, 3, -1], [-1, 0, 1, 2, 3]])
def test_kernels_agree_on_decode_shapes(model, population, ids):
    """One token per row (the decode step) through both kernels and the autograd path."""
    hidden = torch.randn(5, 1, 32, generator=torch.Generator().manual_seed(0))
    layer = model.model.layers[0].self_attn.q_proj
    outs = []
    for kernel in ("gather", "segmented"):
        population.kernel = kernel
        with torch.no_grad(), population.route(ids):
            outs.append(layer(hidden))
    with population.route(ids):
        outs.append(layer(hidden.clone().requires_grad_()))
    with torch.no_grad():
        bare = layer.base(hidden)
        expected = torch.stack([
            bare[r] + population.scale * hidden[r] @ population.A[layer.layer_name][i].t()
            @ population.B[layer.layer_name][i].t() if i >= 0 else bare[r]
            for r, i in enumerate(ids)])
    for out in outs:
        assert (out - expected).abs().max() < 1e-5
    bare_row = ids.index(-1)
    assert torch.equal(outs[0][bare_row], bare[bare_row])
    assert torch.equal(outs[1][bare_row], bare[bare_row])


def test_outside_route_and_all_bare_rows_are_the_bare_model(model, twin, population, tokens):
    with torch.no_grad():
        expected = twin(tokens).logits
        assert torch.equal(model(tokens).logits, expected)
        with population.route([-1] * len(tokens)):
            assert torch.equal(model(tokens).logits, expected)


def test_gradients_flow_into_population_tensors(model, population, tokens):
    name = population.layer_names[0]
    population.B[name].requires_grad_(True)
    with population.route([0, 1, 1, -1, 2, 3]):
        model(tokens).logits.sum().backward()
    grad = population.B[name].grad
    assert grad is not None and all(grad[i].abs().sum() > 0 for i in range(4))


def test_detach_restores_original_modules(model, twin, tokens):
    before = model.model.layers[1].mlp.down_proj
    pop = LoRAPopulation(model, n=2, rank=2)
    randomize(pop)
    assert model.model.layers[1].mlp.down_proj is not before
    pop.detach()
    assert model.model.layers[1].mlp.down_proj is before
    with torch.no_grad():
        assert torch.equal(model(tokens).logits, twin(tokens).logits)
    with pytest.raises(EvoloraError, match="detached"), pop.route([0]):
        pass


def test_only_chosen_targets_are_wrapped(model):
    pop = LoRAPopulation(model, n=1, rank=2, targets=["q_proj", "mlp.down_proj"])
    assert pop.layer_names == [
        "model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj",
        "model.layers.1.self_attn.q_proj", "model.layers.1.mlp.down_proj",
    ]
    assert type(model.model.layers[0].self_attn.k_proj) is torch.nn.Linear
    assert pop.A[pop.layer_names[3]].shape == (1, 2, 56) and pop.B[pop.layer_names[3]].shape == (
        1, 32, 2)


def test_initialisation_follows_peft(model):
    pop = LoRAPopulation(model, n=3, rank=4, alpha=16, seed=5)
    name = "model.layers.0.mlp.down_proj"  # in = 56
    assert pop.scale == 4.0
    assert all(float(pop.B[k].abs().max()) == 0.0 for k in pop.layer_names)
    a = pop.A[name]
    assert float(a.abs().max()) <= 56**-0.5 and float(a.std()) > 0.5 * 56**-0.5 / 3**0.5
    same_seed = LoRAPopulation(tiny_llama(), n=3, rank=4, alpha=16, seed=5)
    assert torch.equal(same_seed.A[name], a)


def test_bad_inputs_raise_clear_errors(model, population, tokens):
    with pytest.raises(EvoloraError, match=r"wq.*not found.*q_proj"):
        LoRAPopulation(tiny_llama(), n=2, targets=["wq", "q_proj"])
    with pytest.raises(EvoloraError, match="already carries"):
        LoRAPopulation(model, n=2)
    with pytest.raises(EvoloraError, match="rank must be an integer"):
        LoRAPopulation(tiny_llama(), n=2, rank=0)
    with pytest.raises(EvoloraError, match="needs a Host or a torch model"):
        LoRAPopulation("builtin", n=2)
    with pytest.raises(EvoloraError, match=r"\[-1, 3\].*\[4\]"), population.route([0, 4]):
        pass
    with pytest.raises(EvoloraError, match=r"6 rows.*3 adapter ids"), population.route([0, 1, 2]):
        model(tokens)


def test_auto_kernel_picks_the_one_that_copies_less():
    from evolora.lora.layer import Routing

    def pick(ids, tokens):
        return Routing.build(ids, 4, 8, 2.0, torch.device("cpu"), "auto").kernel_for(tokens)

    blocks = [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    scattered = [0, 1, 2, 3] * 4
    assert pick(blocks, 32) == "segmented"  # views, nothing copied
    assert pick(scattered, 1) == "segmented"  # decode: 16 row copies < 16 adapter copies
    assert pick(scattered, 32) == "gather"  # prefill: 16 * 32 token copies > 16 * 8
    assert Routing.build(scattered, 4, 8, 2.0, torch.device("cpu"), "gather").kernel_for(1) == (
        "gather")


@pytest.mark.parametrize("ids", [[2] * 6, [1, 1, 1, 3, 3, 3]])
def test_block_gradients_equal_the_gathered_ones(model, population, tokens, ids):
    """A learning batch of one-adapter blocks takes the per-block path; its loss and factor
    gradients equal the per-row gather's."""
    results = []
    for kernel in ("gather", "auto"):
        population.kernel = kernel
        tables = [population.A[n] for n in population.layer_names] + [
            population.B[n] for n in population.layer_names]
        for table in tables:
            table.requires_grad_(True)
        with population.route(ids):
            loss = model(tokens).logits.logsumexp(-1).mean()
        loss.backward()
        results.append((loss.detach(), [t.grad.clone() for t in tables]))
        for table in tables:
            table.grad = None
            table.requires_grad_(False)
    (loss_g, grads_g), (loss_b, grads_b) = results
    assert torch.allclose(loss_g, loss_b, atol=1e-6)
    for g, b in zip(grads_g, grads_b, strict=True):
        assert torch.allclose(g, b, atol=1e-6, rtol=1e-4)
    assert any(g.abs().sum() > 0 for g in grads_b)
