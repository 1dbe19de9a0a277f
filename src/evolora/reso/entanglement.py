"""Multi-agent coordination: several Reso models sharing memory fields and next-token beliefs.

Entanglement couples agents through state, with strength s = `entanglement.strength`:

- shared memory: before generating, each agent's memory field gets s × the mean persistent field of
  its partners (`SedenionMemory.shared`), so what one agent was told, the others recall;
- `consensus`: all agents decode the same prompt in lockstep; agent i draws from
  (1 − s) log p_i + s mean_j log p_j (a geometric pooling of all agents' beliefs), so their texts
  coincide at s = 1 and are independent at s = 0;
- `parallel`: each agent decodes alone (with the shared memory);
- `sequential`: agent k continues the prompt plus agent k−1's text, having written that text into
  its memory first (a relay).

Agents must share a vocabulary (same tokenizer). Cost: one forward per agent per token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evolora.errors import EvoloraError

if TYPE_CHECKING:
    from evolora.reso.inference import GenerationResult, ResoEngine

STRATEGIES = ("consensus", "parallel", "sequential")


def share_memory(engines: list[ResoEngine], strength: float) -> None:
    """Give each agent s × the mean persistent memory field of its partners."""
    fields = []
    for engine in engines:
        memory = engine.model.model.memory
        fields.append(None if memory is None else memory.persistent_field().detach())
    for i, engine in enumerate(engines):
        memory = engine.model.model.memory
        partners = [f for j, f in enumerate(fields) if j != i and f is not None]
        if memory is None or not partners:
            continue
        mean = sum(partners) / len(partners)
        if mean.shape == memory.moments.shape[1:]:
            memory.shared = strength * mean


def coordinate(engines: list[ResoEngine], prompt: str, strategy: str, max_new_tokens: int,
               temperature: float, seed: int) -> list[GenerationResult]:
    """Run one coordinated generation; one result per engine, in order."""
    from evolora.reso.inference import decode

    if strategy not in STRATEGIES:
        raise EvoloraError(
            f"coordination_strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}."
        )
    vocab = {e.model.config.vocab_size for e in engines}
    if len(vocab) > 1:
        raise EvoloraError("Coordinated agents must share one vocabulary (the same tokenizer).")
    cfg = engines[0].model.config.sections.entanglement
    strength = cfg.strength
    if cfg.share_memory:
        share_memory(engines, strength)
    try:
        if strategy == "consensus":
            decoders = [e.start(prompt, seed + i) for i, e in enumerate(engines)]
            return decode(decoders, max_new_tokens, temperature, None, strength)
        if strategy == "parallel":
            return [decode([e.start(prompt, seed + i)], max_new_tokens, temperature, None, 0.0)[0]
                    for i, e in enumerate(engines)]
        results: list[GenerationResult] = []
        text = prompt
        for i, engine in enumerate(engines):
            if results and engine.model.model.memory is not None:
                engine.update_memory(results[-1].text or prompt)
            result = decode([engine.start(text, seed + i)], max_new_tokens, temperature, None,
                            0.0)[0]
            results.append(result)
            text = text + result.text
        return results
    finally:
        for engine in engines:
            if engine.model.model.memory is not None:
                engine.model.model.memory.shared = None
