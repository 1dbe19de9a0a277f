"""`DecoderStack`: one decoder-only causal LM opened up layer by layer, so a braid can stop between
layers, fuse the models' hidden states and continue.

It needs the Llama-style layout transformers uses for Llama, Mistral, Qwen2 and similar models:
`model.model.{embed_tokens, layers, norm, rotary_emb}` and `model.lm_head`. The attention mask is
built here (an additive 4D mask), so no private transformers helper is needed.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from evolora.errors import EvoloraError

_PARTS = ("embed_tokens", "layers", "norm", "rotary_emb")


class DecoderStack:
    """Layer-by-layer access to a Llama-style causal LM (frozen: no gradient to its weights)."""

    def __init__(self, model: nn.Module, name: str) -> None:
        inner = getattr(model, "model", None)
        missing = [p for p in _PARTS if not hasattr(inner, p)]
        if inner is None or missing or not hasattr(model, "lm_head"):
            raise EvoloraError(
                f"Model '{name}' ({type(model).__name__}) lacks the Llama-style layout "
                f"(model.model.{{{', '.join(_PARTS)}}}, lm_head) that layer fusion needs; use an "
                "output-level strategy (logit_average, product_of_experts) for it."
            )
        model.eval()
        model.requires_grad_(False)
        self.model = model
        self.name = name
        self.inner = inner
        self.depth = len(inner.layers)
        self.hidden = int(model.config.hidden_size)
        # transformers 5 renamed the layers' past_key_values argument to cache.
        params = inspect.signature(inner.layers[0].forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings (B, T, d)."""
        return self.inner.embed_tokens(ids)

    def rope(self, h: torch.Tensor, positions: torch.Tensor):
        """The rotary (cos, sin) pair for these positions."""
        return self.inner.rotary_emb(h, position_ids=positions)

    def layer(self, index: int, h, mask, positions, rope, cache) -> torch.Tensor:
        """Hidden states after decoder layer `index` (its keys and values go into `cache`)."""
        out = self.inner.layers[index](
            h,
            attention_mask=mask,
            position_ids=positions,
            use_cache=cache is not None,
            position_embeddings=rope,
            **{self._cache_arg: cache},
        )
        return out[0] if isinstance(out, tuple) else out

    def final(self, h: torch.Tensor) -> torch.Tensor:
        """The final norm of the last hidden states (B, T, d)."""
        return self.inner.norm(h)

    def logits(self, normed: torch.Tensor) -> torch.Tensor:
        """Next-token logits (B, T, V) from final-normed states."""
        return self.model.lm_head(normed)


def additive_mask(key_mask: torch.Tensor, queries: int, dtype: torch.dtype) -> torch.Tensor:
    """Causal + padding mask (B, 1, queries, keys): 0 where a query may attend, -inf-like elsewhere.

    `key_mask` (B, keys) is 1 for real tokens; the queries are the last `queries` keys.
    """
    keys = key_mask.shape[1]
    device = key_mask.device
    q_pos = torch.arange(keys - queries, keys, device=device)[:, None]
    k_pos = torch.arange(keys, device=device)[None, :]
    allowed = (k_pos <= q_pos)[None] & key_mask.bool()[:, None, :]  # (B, Q, K)
    # A fully padded query row would give NaN in softmax; let it see itself.
    allowed = allowed | (~allowed.any(-1, keepdim=True) & (k_pos == q_pos)[None])
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]
