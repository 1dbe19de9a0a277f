"""The Reso model: a Llama-shaped causal transformer with the Reso-LLM v2 extensions in its forward.

    tokens ─► prime embedding ─► PRSC ─► Kuramoto phases θ ─► agency salience σ, goal g
           ─► N × [ resonant attention (θ, σ) ─► SwiGLU FFN with stochastic resonance ] with ACT
              halting over depth (coherence gating)
           ─► sedenion memory field ─► RMSNorm ─► (+ g) ─► tied output embedding ─► logits

Every extension is one module in its own file with its equations in the docstring; each one is
switched by its config section's `enabled`, and with all of them off this is exactly a pre-norm
Llama (RoPE, RMSNorm, SwiGLU, tied embeddings) of the same shape. They run identically in training
and inference. Linear layers keep Llama's names (q_proj ... down_proj) so LoRA populations attach.

Cached decoding: the state an extension needs from earlier tokens is kept in extra layers of the
same transformers `DynamicCache` after the attention layers, so a cached step computes exactly what
the full forward computes: per token, the token ids and memory bindings; as running sums (one
vector per row, replaced each step, so their cost does not grow with the length), the Kuramoto
steps' sine and cosine sums, the PRSC states' sum and the agency inputs' sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache, GenerationMixin, PreTrainedModel
from transformers.cache_utils import DynamicLayer
from transformers.modeling_outputs import CausalLMOutputWithPast

from evolora.errors import EvoloraError
from evolora.reso import gating
from evolora.reso.agency import AgencyLayer
from evolora.reso.attention import ResonantAttention, rope_tables, score_features
from evolora.reso.config import ResoConfig
from evolora.reso.kuramoto import KuramotoSync
from evolora.reso.memory import SedenionMemory
from evolora.reso.primes import PrimeEmbedding
from evolora.reso.prsc import PRSCLayer
from evolora.reso.resonance import ResonantFFN, repeated_bigrams

# Extra cache layers after the attention layers, one per kind of state; RUNNING ones hold sums.
TOKENS, PHASES, PRSC_STATES, AGENCY_INPUTS, MEMORY = range(5)
RUNNING = (PHASES, PRSC_STATES, AGENCY_INPUTS)


@dataclass
class ResoOutput(CausalLMOutputWithPast):
    """Causal LM output plus the auxiliary (ponder) loss and the per-token traces of this call."""

    aux_loss: torch.Tensor | None = None
    salience: torch.Tensor | None = None  # (B, T) agency salience
    order: torch.Tensor | None = None  # (B, T) Kuramoto order parameter
    coherence: torch.Tensor | None = None  # (B, T) PRSC context coherence
    final_hidden: torch.Tensor | None = None  # (B, T, D) before the output embedding


@dataclass
class ForwardContext:
    """What every block needs from the extensions that ran before it."""

    rope: tuple[torch.Tensor, torch.Tensor]
    attn_mask: torch.Tensor | None  # (B, 1, T, S) bool, None = plain causal
    cache: DynamicCache | None
    phase: torch.Tensor | None  # (B, T)
    salience: torch.Tensor | None  # (B, T)
    repetition: torch.Tensor | None  # (B, T)
    generator: torch.Generator | None
    _features: dict = field(default_factory=dict)

    def features(self, resonance: bool, agency: bool, head_size: int):
        """The attention's extra query/key features (attention.score_features), built once per
        forward and shared by the layers."""
        key = (resonance, agency, head_size)
        if key not in self._features:
            self._features[key] = score_features(
                self.phase if resonance else None, self.salience if agency else None, head_size)
        return self._features[key]


def attention_mask_for(valid: torch.Tensor, past_len: int, t: int) -> torch.Tensor | None:
    """The boolean mask (B, 1, T, S) of causal attention over valid keys, or None when plain
    causal attention (no cache, no padding) does. A padded query sees itself, so no row is empty."""
    s = valid.shape[1]
    if past_len == 0 and bool(valid.all()):
        return None
    q_idx = torch.arange(past_len, s, device=valid.device)
    k_idx = torch.arange(s, device=valid.device)
    causal = k_idx[None, :] <= q_idx[:, None]  # (T, S)
    mask = (causal[None] & valid[:, None, :]) | (k_idx[None, :] == q_idx[:, None])
    return mask[:, None]


class RunningLayer(DynamicLayer):
    """A cache layer holding one running state per row, (B, 1, 1, F): `update` replaces it."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace the state by `key_states` (and `value_states`)."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        self.keys, self.values = key_states, value_states
        return self.keys, self.values

    def crop(self, tokens_to_remove: int) -> None:
        """A running sum cannot drop tokens: refuse."""
        if tokens_to_remove:
            raise EvoloraError("A Reso cache keeps running sums and cannot be cropped.")


class History:
    """Extension state stored as extra layers of a DynamicCache (see module docstring)."""

    def __init__(self, cache: DynamicCache | None, first_layer: int) -> None:
        self.cache, self.first = cache, first_layer

    def past(self, slot: int) -> torch.Tensor | None:
        """The stored state of `slot`: (B, S_past, F) per token, or (B, F) for a RUNNING slot;
        None when nothing is stored."""
        if self.cache is None or len(self.cache.layers) <= self.first + slot:
            return None
        keys = self.cache.layers[self.first + slot].keys
        if keys is None or keys.numel() == 0:
            return None
        return keys[:, 0, 0] if slot in RUNNING else keys[:, 0]

    def append(self, slot: int, new: torch.Tensor) -> None:
        """Store the state of this call's tokens: (B, T, F) appended per token, or for a RUNNING
        slot the new running state (B, F) in place of the old one."""
        if self.cache is None:
            return
        while len(self.cache.layers) <= self.first + slot:
            index = len(self.cache.layers) - self.first
            self.cache.layers.append(RunningLayer() if index in RUNNING else DynamicLayer())
        if slot in RUNNING:
            new = new[:, None]
        self.cache.update(new[:, None], new[:, None, :, :0], self.first + slot)


class Block(nn.Module):
    """Pre-norm block: x + attn(norm(x)); x + ffn(norm(x)) on the tokens still active."""

    def __init__(self, config: ResoConfig, index: int) -> None:
        super().__init__()
        d = config.hidden_size
        self.input_layernorm = nn.RMSNorm(d, eps=config.rms_norm_eps)
        self.self_attn = ResonantAttention(
            d, config.num_attention_heads, index, config.resonant_attention["phase_scale"],
            resonance=config.enabled("resonant_attention"), agency=config.enabled("agency"),
        )
        self.post_attention_layernorm = nn.RMSNorm(d, eps=config.rms_norm_eps)
        sr = config.stochastic_resonance
        self.mlp = ResonantFFN(d, config.intermediate_size, sr["enabled"], sr["noise_amplitude"])
        gate = config.coherence_gating
        last = index == config.num_hidden_layers - 1  # the last block halts every token anyway
        self.halting = (gating.HaltingUnit(d, gate["halt_bias_init"])
                        if gate["enabled"] and not last else None)

    def forward(self, x: torch.Tensor, ctx: ForwardContext,
                active: torch.Tensor | None) -> tuple[torch.Tensor, int]:
        """(new x (B, T, D), number of token FFNs skipped because their token had halted);
        `active` (B, T) marks the tokens still computing, None = all of them."""
        x = x + self.self_attn(self.input_layernorm(x), ctx)
        h = self.post_attention_layernorm(x)
        if active is None:
            return x + self.mlp(h, ctx.repetition, ctx.generator), 0
        if not bool(active.any()):
            return x, active.numel()
        packed, index = gating.pack(h, active)  # (B, T_active, D)
        rep = ctx.repetition.gather(1, index) if ctx.repetition is not None else None
        y = self.mlp(packed, rep, ctx.generator)
        return gating.unpack(x, y, index, active), int((~active).sum())


class ResoBody(nn.Module):
    """Embedding, extensions and blocks: hidden states from token ids."""

    def __init__(self, config: ResoConfig) -> None:
        super().__init__()
        d = config.hidden_size
        pe = config.prime_embedding
        self.embed = PrimeEmbedding(config.vocab_size, d, pe["enabled"], pe["amplitude_init"])
        p = config.prsc
        self.prsc = (PRSCLayer(d, p["num_primes"], p["coherence_threshold"], p["sharpness"],
                               p["max_bindings"]) if p["enabled"] else None)
        k = config.kuramoto
        self.kuramoto = (KuramotoSync(d, k["steps"], k["coupling"], k["dt"])
                         if k["enabled"] else None)
        a = config.agency
        self.agency = (AgencyLayer(d, a["intrinsic_goals"], a["max_goals"], a["novelty_weight"],
                                   a["explicit_priority"]) if a["enabled"] else None)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.num_hidden_layers))
        m = config.temporal_smf
        self.memory = (SedenionMemory(d, m["channels"], m["memory_decay_rate"],
                                      m["episodic_tagging"], m["episode_carry"], m["max_moments"])
                       if m["enabled"] else None)
        self.norm = nn.RMSNorm(d, eps=config.rms_norm_eps)


class ResoForCausalLM(PreTrainedModel, GenerationMixin):
    """The Reso causal LM (see the module docstring); a transformers model like any other."""

    config_class = ResoConfig
    base_model_prefix = "model"
    _tied_weights_keys: ClassVar = {"lm_head.weight": "model.embed.embed_tokens.weight"}
    _supports_sdpa = True

    def __init__(self, config: ResoConfig) -> None:
        super().__init__(config)
        self.model = ResoBody(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, nn.RMSNorm):
            nn.init.ones_(module.weight)
        elif isinstance(module, (gating.HaltingUnit, KuramotoSync)):
            module.reset_parameters()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.embed.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: DynamicCache | None = None,
        past_key_values: DynamicCache | None = None,
        use_cache: bool | None = None,
        labels: torch.LongTensor | None = None,
        logits_to_keep: int = 0,
        noise_generator: torch.Generator | None = None,
        **kwargs,
    ) -> ResoOutput:
        """Logits (B, T or logits_to_keep, V) of token ids (B, T); see the module docstring.

        `cache` (or its older name `past_key_values`) is a DynamicCache for cached decoding.
        `attention_mask` (B, S) covers cached and new tokens (1 = real, 0 = padding); with
        `labels` (B, T) the loss is the shifted cross-entropy plus the ponder loss.
        """
        cfg, body = self.config, self.model
        b, t = input_ids.shape
        cache = cache if cache is not None else past_key_values
        if cache is None and use_cache:
            cache = DynamicCache()
        past_len = cache.get_seq_length() if cache is not None else 0
        s = past_len + t
        valid = (attention_mask.bool() if attention_mask is not None
                 else torch.ones(b, s, dtype=torch.bool, device=input_ids.device))
        valid = valid[:, -s:]
        if position_ids is None:
            position_ids = (valid.long().cumsum(-1) - 1).clamp(min=0)[:, -t:]
        hist = History(cache, cfg.num_hidden_layers)

        tokens = input_ids.float()[..., None]
        past_tokens = hist.past(TOKENS)
        hist.append(TOKENS, tokens)
        all_tokens = tokens if past_tokens is None else torch.cat([past_tokens, tokens], 1)

        x = body.embed(input_ids)  # (B, T, D)
        theta0 = body.embed.phases(input_ids)  # (B, T)
        coherence = order = salience = goal = None
        if body.prsc is not None:
            x, coherence, running = body.prsc(x, theta0, valid, hist.past(PRSC_STATES))
            hist.append(PRSC_STATES, running)
        phase = theta0
        if body.kuramoto is not None:
            phase, order, running = body.kuramoto(x, theta0, valid, hist.past(PHASES))
            hist.append(PHASES, running)
        if body.agency is not None:
            salience, goal, running = body.agency(x, valid, hist.past(AGENCY_INPUTS))
            hist.append(AGENCY_INPUTS, running)
        repetition = None
        if cfg.enabled("stochastic_resonance"):
            # The last t tokens' bigrams look back `window` bigrams: window + 1 earlier tokens.
            keep = t + cfg.stochastic_resonance["window"] + 1
            repetition = repeated_bigrams(all_tokens[:, -keep:, 0].long(), valid[:, -keep:],
                                          cfg.stochastic_resonance["window"])[:, -t:]

        ctx = ForwardContext(
            rope=rope_tables(position_ids, cfg.hidden_size // cfg.num_attention_heads,
                             cfg.rope_theta),
            attn_mask=attention_mask_for(valid, past_len, t), cache=cache, phase=phase,
            salience=salience,
            repetition=repetition, generator=noise_generator,
        )

        gate = cfg.coherence_gating
        halt = gating.start(x, valid[:, -t:]) if gate["enabled"] else None
        skipped = 0
        for i, block in enumerate(body.layers):
            # None while every token is active: the block and the merge below skip the masking.
            active = None if halt is None or bool(halt.active.all()) else halt.active
            new, n_skipped = block(x, ctx, active)
            skipped += n_skipped
            if halt is not None:
                last = i == len(body.layers) - 1
                p = None if last else block.halting(new)
                x = new if active is None else torch.where(active[..., None], new, x)
                gating.step(halt, new, p, gate["halt_threshold"])
            else:
                x = new
        aux = None
        if halt is not None:
            x = halt.output + x * (~valid[:, -t:])[..., None]  # padding keeps its state
            real = valid[:, -t:].to(x.dtype)
            ponder = (halt.ponder * real).sum() / real.sum().clamp(min=1.0)
            aux = gate["ponder_cost"] * ponder
        if body.memory is not None:
            boundary = torch.isin(input_ids, torch.as_tensor(cfg.episode_boundary_ids or [-1],
                                                             device=input_ids.device))
            past_mem = hist.past(MEMORY)
            base = past_mem[:, -1:, -1] if past_mem is not None else 0.0
            episodes = base + boundary.to(x.dtype).cumsum(1)
            x, written = body.memory(x, position_ids, episodes, valid, past_mem)
            hist.append(MEMORY, written)
        x = body.norm(x)
        if goal is not None:
            x = x + goal  # α g_t: the goal's bias on the logits through the tied embedding
        logits = self.lm_head(x[:, -logits_to_keep:] if logits_to_keep else x)

        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                   ignore_index=-100)
            if aux is not None:
                loss = loss + aux
        if halt is not None:  # padding starts halted: do not count it as saved work
            skipped -= int((~valid[:, -t:]).sum()) * len(body.layers)
        real_tokens = int(valid[:, -t:].sum())
        self.last_skip = (skipped, real_tokens * len(body.layers))
        return ResoOutput(
            loss=loss, logits=logits, cache=cache, aux_loss=aux, salience=salience,
            order=order, coherence=coherence, final_hidden=x,
        )

    @torch.no_grad()
    def bind_concept(self, name: str, token_id: int) -> int:
        """Bind concept `name` to the PRSC prime state of token `token_id`; return its slot."""
        prsc = self.model.prsc
        if prsc is None:
            raise EvoloraError("bind_concept needs the PRSC layer; set prsc.enabled to true.")
        if not 0 <= token_id < self.config.vocab_size:
            raise EvoloraError(
                f"token_id must be in [0, {self.config.vocab_size - 1}], got {token_id}."
            )
        ids = torch.tensor([[token_id]], device=self.device)
        state = prsc.state(self.model.embed(ids), self.model.embed.phases(ids))[0, 0]
        slot = prsc.bind(state)
        self.config.prsc_binding_names.append(name)
        return slot

    @torch.no_grad()
    def memory_moment(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The mean sedenion binding (C, 16) a text (1, T) writes to the memory field."""
        if self.model.memory is None:
            raise EvoloraError("update_memory needs temporal_smf.enabled: true.")
        cache = DynamicCache()
        self(input_ids, cache=cache, use_cache=True)
        written = History(cache, self.config.num_hidden_layers).past(MEMORY)  # (1, T, 16C + 2)
        return written[0, :, :-2].mean(0).view(self.model.memory.channels, 16)
