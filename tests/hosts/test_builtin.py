"""The packaged built-in host: present, small, loads offline, knows the task formats."""

from __future__ import annotations

import numpy as np

from evolora.hosts import load_host
from evolora.hosts.loading import BUILTIN_DIR
from evolora.tasks import TaskGrid


def test_checkpoint_files_are_shipped_and_small():
    for name in ("config.json", "model.safetensors", "tokenizer.json", "MODEL_CARD.md"):
        assert (BUILTIN_DIR / name).is_file(), name
    assert sum(p.stat().st_size for p in BUILTIN_DIR.iterdir()) <= 25 * 2**20
    card = (BUILTIN_DIR / "MODEL_CARD.md").read_text()
    assert "evolora host train --config configs/host_builtin.yaml" in card


def test_builtin_host_loads_and_generates():
    host = load_host()
    assert type(host.model).__name__ == "LlamaForCausalLM"
    assert host.n_params < 5_000_000
    assert len(host.tokenizer) <= 2048
    assert host.context == 256
    prompts = ["math: 2+3=", "logic: T and F =", "sort asc: 3 1 2 ="]
    out = host.generate(prompts, max_new_tokens=16)
    assert len(out) == 3 and all("\n" not in text for text in out)
    assert out == host.generate(prompts, max_new_tokens=16, use_cache=False)


def test_digits_are_single_tokens():
    tokenizer = load_host().tokenizer
    pieces = tokenizer.convert_ids_to_tokens(
        tokenizer("12345", add_special_tokens=False)["input_ids"]
    )
    assert pieces == ["1", "2", "3", "4", "5"]


def test_builtin_host_knows_the_math_format():
    host = load_host()
    rng = np.random.default_rng(0)
    grid = TaskGrid(["math"], [1])
    examples = grid.sample_batch(rng, 20, split="holdout")
    out = host.generate([e.prompt for e in examples], max_new_tokens=8)
    numbers = [text.strip().lstrip("-").isdigit() for text in out]
    assert sum(numbers) >= 16, out
