"""The AdapterRouter hook: every forward runs inside route(ids) with ids aligned to its rows."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from evolora.errors import EvoloraError
from evolora.hosts import AdapterRouter

PROMPTS = ["math: 3+4*2=", "To be", "sort asc: pear apple fig =", "logic: T and F =", "Whether"]


class ForcingRouter:
    """A fake population: adapter k forces token k to be the most likely next token."""

    def __init__(self, model):
        self.active: torch.Tensor | None = None
        self.calls: list[torch.Tensor] = []
        self.forwards_outside = 0
        model.lm_head.register_forward_hook(self._hook)

    @contextmanager
    def route(self, adapter_ids):
        self.calls.append(adapter_ids.clone())
        self.active = adapter_ids
        try:
            yield
        finally:
            self.active = None

    def _hook(self, module, inputs, output):
        if self.active is None:
            self.forwards_outside += 1
            return output
        assert output.shape[0] == self.active.shape[0]
        boost = torch.zeros_like(output)
        rows = (self.active >= 0).nonzero().squeeze(-1)
        boost[rows, :, self.active[rows]] = 1e4
        return output + boost


@pytest.fixture()
def routed(llama_dir):
    from evolora.hosts import load_host

    host = load_host(str(llama_dir))
    return host, ForcingRouter(host.model)


def test_forcing_router_satisfies_the_protocol(routed):
    assert isinstance(routed[1], AdapterRouter)


def test_rows_keep_their_adapter_through_prefill_and_cached_decoding(routed):
    host, router = routed
    letters = ["a", "b", "c", "d"]
    ids = [host.tokenizer.convert_tokens_to_ids(x) for x in letters] + [-1]
    bare = host.generate(PROMPTS, max_new_tokens=3, stop=())
    router.forwards_outside = 0
    out = host.generate(
        PROMPTS, max_new_tokens=3, stop=(), adapters=router, adapter_ids=ids, batch_size=2
    )
    assert out[:4] == [x * 3 for x in letters]
    assert out[4] == bare[4]  # -1: the bare host
    assert router.forwards_outside == 0  # prefill and every cached decode step were routed
    assert len(router.calls) == 3  # micro-batches of 2, 2, 1
    assert sorted(torch.cat(router.calls).tolist()) == sorted(ids)
    assert all(c.device == host.device and c.dtype == torch.long for c in router.calls)


def test_loglik_is_routed_too(routed):
    host, router = routed
    a = host.tokenizer.convert_tokens_to_ids("a")
    scores = host.loglik(PROMPTS[:2], ["a", "a"], adapters=router, adapter_ids=[a, -1])
    assert scores[0].item() > -1e-3  # forced: probability ~1
    assert scores[1].item() < -1.0


def test_adapter_ids_must_match_prompts(routed):
    host, router = routed
    with pytest.raises(EvoloraError, match="adapter_ids has 1 entries but there are 2 prompts"):
        host.generate(PROMPTS[:2], adapters=router, adapter_ids=[0])
    with pytest.raises(EvoloraError, match="without adapter_ids"):
        host.loglik(PROMPTS[:1], ["a"], adapters=router)
    with pytest.raises(EvoloraError, match="without adapters"):
        host.generate(PROMPTS[:1], adapter_ids=[0])
