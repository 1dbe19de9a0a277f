import pytest
import torch
from reso_helpers import tiny, tokens
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from evolora.errors import EvoloraError
from evolora.reso import ResoForCausalLM, preset_config
from evolora.reso.sections import FORWARD_EXTENSIONS


def test_all_extensions_off_is_exactly_a_llama():
    reso = tiny(ablate=FORWARD_EXTENSIONS)
    cfg = reso.config
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads, num_key_value_heads=cfg.num_attention_heads,
        max_position_embeddings=cfg.max_position_embeddings, tie_word_embeddings=True,
        rms_norm_eps=cfg.rms_norm_eps,
    )).eval()
    state = {k.replace("model.embed.embed_tokens", "model.embed_tokens"): v
             for k, v in reso.state_dict().items()}
    missing, unexpected = llama.load_state_dict(state, strict=False)
    assert not unexpected and all("rotary" in k for k in missing)
    x = tokens()
    with torch.no_grad():
        assert torch.allclose(reso(x).logits, llama(x).logits, atol=1e-5)


@pytest.mark.parametrize("name", FORWARD_EXTENSIONS)
def test_each_extension_changes_the_output_and_is_absent_when_disabled(name):
    off = tiny(ablate=(name,))
    on = tiny()
    on.load_state_dict(off.state_dict(), strict=False)  # shared weights equal; only `name` differs
    x = tokens()
    if name == "stochastic_resonance":  # acts only where a bigram repeats
        x = torch.cat([x, x], dim=1)
    with torch.no_grad():
        assert not torch.allclose(on(x).logits, off(x).logits, atol=1e-4)
    module = {"prsc": "prsc", "kuramoto": "kuramoto", "agency": "agency", "temporal_smf": "memory"}
    if name in module:
        assert getattr(off.model, module[name]) is None


def test_every_parameter_gets_a_gradient_in_training_mode():
    model = tiny().train()
    x = torch.cat([tokens(length=10), tokens(length=10)], dim=1)
    out = model(x, labels=x)
    out.loss.backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead
    assert out.aux_loss is not None and out.aux_loss > 0


def test_cached_decoding_with_left_padding_matches_the_full_forward():
    # Halting after block 0 (p = 0.88 > 0.5): block 1's FFN is skipped.
    model = tiny(coherence_gating={"halt_bias_init": 2.0, "halt_threshold": 0.5})
    x = tokens(length=14)
    mask = torch.ones_like(x)
    mask[0, :3] = 0
    with torch.no_grad():
        full = model(x, attention_mask=mask).logits
        skipped, total = model.last_skip
        cache = DynamicCache()
        parts = [model(x[:, :9], attention_mask=mask[:, :9], cache=cache, use_cache=True).logits]
        for i in range(9, 14):
            parts.append(model(x[:, i:i + 1], attention_mask=mask[:, :i + 1], cache=cache,
                               use_cache=True).logits)
    stepped = torch.cat(parts, dim=1)
    assert torch.allclose(full[1], stepped[1], atol=1e-4)
    assert torch.allclose(full[0, 3:], stepped[0, 3:], atol=1e-4)
    assert skipped == total // 2  # every real token skipped block 1


def test_a_padded_row_computes_what_it_computes_alone():
    model = tiny()
    x = tokens(batch=1)
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), x], dim=1)
    mask = (padded > 0).long()
    with torch.no_grad():
        assert torch.allclose(model(x).logits[0, -1],
                              model(padded, attention_mask=mask).logits[0, -1], atol=1e-5)


def test_save_and_load_give_identical_logits(tmp_path):
    model = tiny()
    model.bind_concept("crown", 77)
    model.save_pretrained(tmp_path)
    loaded = ResoForCausalLM.from_pretrained(tmp_path).eval()
    assert loaded.config.prsc_binding_names == ["crown"]
    x = tokens()
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded(x).logits)


def test_hf_generate_runs_with_the_kv_cache():
    model = tiny()
    out = model.generate(tokens(batch=1, length=5), max_new_tokens=4, do_sample=False)
    assert out.shape == (1, 9)


@pytest.mark.parametrize("bad", [
    {"agency": {"max_focus": 3}},
    {"warp_drive": {"enabled": True}},
    {"prsc": {"coherence_threshold": 2.0}},
])
def test_a_bad_section_or_knob_is_one_sentence(bad):
    with pytest.raises(EvoloraError) as problem:
        preset_config("tiny", overrides=bad)
    message = str(problem.value)
    assert "\n" not in message
    assert next(iter(bad)) in message


def test_decoding_keeps_running_sums_whose_size_does_not_grow():
    from evolora.reso.model import RUNNING, History

    model = tiny()
    x = tokens(length=16)
    cache = DynamicCache()
    with torch.no_grad():
        full = model(x).logits
        model(x[:, :4], cache=cache, use_cache=True)
        history = History(cache, model.config.num_hidden_layers)
        sizes = [history.past(slot).shape for slot in RUNNING]
        for i in range(4, 16):
            last = model(x[:, i:i + 1], cache=cache, use_cache=True).logits
    assert [history.past(slot).shape for slot in RUNNING] == sizes
    assert all(len(size) == 2 for size in sizes)  # one state (B, F) per row, not per token
    assert torch.allclose(last[:, -1], full[:, -1], atol=1e-4)
