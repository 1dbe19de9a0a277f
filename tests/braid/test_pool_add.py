"""`evolora braid pool add`: a local HF model joins a pool as a member of kind hf, profiled as
`pool make` profiles its members; bad input is one sentence (exit 2)."""

from __future__ import annotations

import json

import pytest
import torch
from braid_models import made_pool, probe_logits, tiny_host

from evolora.braid.pool import load_pool, read_profiles
from evolora.braid.pool_add import save_model_folder
from evolora.braid.pool_make import measure_skill
from evolora.cli import main
from evolora.hosts import load_host


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A pool made by `pool make` (the built-in host and a math and a logic adapter)."""
    return made_pool(tmp_path_factory.mktemp("add"), [1])


def test_an_added_model_joins_with_the_profile_a_make_would_give_it(base, tmp_path, capsys):
    host = load_host("builtin")
    copy = save_model_folder(host, tmp_path / "copy")
    tuned = load_host("builtin")
    with torch.no_grad():
        for p in tuned.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    tuned_dir = save_model_folder(tuned, tmp_path / "tuned")

    once, twice = tmp_path / "once", tmp_path / "twice"
    assert main(["braid", "pool", "add", str(base), str(copy), "--name", "copy",
                 "-o", str(once)]) == 0
    assert "Wrote the pool to" in capsys.readouterr().out
    assert main(["braid", "pool", "add", str(once), str(tuned_dir), "--name", "tuned",
                 "--domain", "logic", "-o", str(twice)]) == 0
    made = read_profiles(base)
    profiles = read_profiles(twice)
    assert [p.name for p in profiles] == ["host", "math-lora", "logic-lora", "copy", "tuned"]
    added = profiles[3]
    assert (added.kind, added.domain, added.source) == ("hf", "general", str(copy.resolve()))
    assert (added.params, added.layers, added.hidden, added.cost_per_token) == (
        made[0].params, made[0].layers, made[0].hidden, made[0].cost_per_token)
    # the same prompts and settings as the make: an unchanged host scores as the host did
    assert added.skill == made[0].skill
    # and through the second pool, which has no make config but the record of the first add
    assert profiles[4].skill == measure_skill(tuned, ["math", "logic"], [1], 6, 0, 4)
    assert profiles[4].domain == "logic"

    pool, original = load_pool(twice), load_pool(base)
    torch.testing.assert_close(probe_logits(pool.hosts[4]), probe_logits(tuned))
    assert not torch.allclose(probe_logits(pool.hosts[4]), probe_logits(host))
    for k in range(3):  # the pool's own members are unchanged
        torch.testing.assert_close(probe_logits(pool.hosts[k]), probe_logits(original.hosts[k]))
    assert json.loads((twice / "pool.json").read_text())["made_with"] is None


def test_bad_additions_are_one_sentence(base, tmp_path, tokenizer, capsys):
    good = save_model_folder(load_host("builtin"), tmp_path / "good")
    foreign = save_model_folder(tiny_host(tokenizer, 0), tmp_path / "foreign")
    (tmp_path / "empty").mkdir()
    cases = {
        "already in the pool": [str(good), "--name", "logic-lora"],
        "--domain must be": [str(good), "--name", "x", "--domain", "poetry"],
        "does not exist": [str(tmp_path / "missing"), "--name", "x"],
        "no config.json": [str(tmp_path / "empty"), "--name", "x"],
        "different tokenizers": [str(foreign), "--name", "x"],
        "already holds a pool": [str(good), "--name", "x", "-o", str(base)],
    }
    for message, args in cases.items():
        out = [] if "-o" in args else ["-o", str(tmp_path / "out")]
        assert main(["braid", "pool", "add", str(base), *args, *out]) == 2, message
        assert message in capsys.readouterr().err.replace("\n", " "), message
    assert not (tmp_path / "out").exists()
