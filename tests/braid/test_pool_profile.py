"""`evolora braid pool profile`: every member's skill measured again on distinct selection prompts
(never a braid run's evaluation prompts), recorded so that `pool add` measures alike; a run whose
selection share is smaller than the profile's stops; bad input is one sentence (exit 2)."""

from __future__ import annotations

import json

import pytest
import torch
from braid_models import made_pool, probe_logits

from evolora.braid.config import TrainConfig
from evolora.braid.pool import load_pool, read_profiles
from evolora.braid.pool_add import save_model_folder
from evolora.braid.pool_make import measure_skill
from evolora.braid.trainer import check_profile_prompts
from evolora.cli import main
from evolora.ecology.roles import Role, role_of
from evolora.errors import EvoloraError
from evolora.hosts import load_host
from evolora.tasks import Example


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A pool made by `pool make` (the built-in host and a math and a logic adapter)."""
    return made_pool(tmp_path_factory.mktemp("profile"), [1, 2])


class Recorder:
    """A stand-in host that answers nothing and keeps the prompts it was asked."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def generate(self, prompts, max_new_tokens):
        self.prompts += prompts
        return [""] * len(prompts)


def test_skill_on_selection_prompts_is_measured_on_distinct_selection_prompts_only():
    host = Recorder()
    measure_skill(host, ["logic", "sorting"], [2, 3], 40, 0, 4, selection_fraction=0.3)
    assert len(host.prompts) == len(set(host.prompts)) == 80  # 20 distinct per cell
    roles = {role_of(Example(p, "", "", 1, {}), 0.3) for p in host.prompts}
    assert roles == {Role.select}
    drawn = Recorder()
    measure_skill(drawn, ["logic", "sorting"], [2, 3], 40, 0, 4)  # holdout draws, as make does
    assert {role_of(Example(p, "", "", 1, {}), 0.3) for p in drawn.prompts} >= {Role.evaluate}


def test_a_profiled_pool_keeps_its_members_and_measures_later_members_alike(base, tmp_path,
                                                                          capsys):
    out = tmp_path / "profiled"
    assert main(["braid", "pool", "profile", str(base), "-o", str(out), "--examples", "10",
                 "--selection-fraction", "0.5"]) == 0
    assert "Wrote the pool to" in capsys.readouterr().out
    data = json.loads((out / "pool.json").read_text())
    assert data["made_with"] is None
    assert data["skill_with"] == {"seed": 0, "families": ["math", "logic"],
                                  "difficulties": [1, 2], "skill_examples": 10,
                                  "max_new_tokens": 4, "selection_fraction": 0.5}
    assert data["skill_prompts"] == {"math": 10, "logic": 10}  # 5 distinct per difficulty
    before, after = read_profiles(base), read_profiles(out)
    pool, original = load_pool(out), load_pool(base)
    for k, (old, new) in enumerate(zip(before, after, strict=True)):
        assert {**old.describe(), "skill": None} == {**new.describe(), "skill": None}
        assert new.skill == measure_skill(original.hosts[k], ["math", "logic"], [1, 2], 10, 0, 4,
                                          0.5)
        torch.testing.assert_close(probe_logits(pool.hosts[k]), probe_logits(original.hosts[k]))
    assert any(old.skill != new.skill for old, new in zip(before, after, strict=True))

    tuned = load_host("builtin")
    with torch.no_grad():
        for p in tuned.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    added = tmp_path / "added"
    assert main(["braid", "pool", "add", str(out), str(save_model_folder(tuned, tmp_path / "m")),
                 "--name", "tuned", "-o", str(added)]) == 0
    assert read_profiles(added)[-1].skill == measure_skill(tuned, ["math", "logic"], [1, 2], 10,
                                                           0, 4, 0.5)
    recorded = json.loads((added / "pool.json").read_text())
    assert (recorded["skill_with"], recorded["skill_prompts"]) == (data["skill_with"],
                                                                   data["skill_prompts"])

    check_profile_prompts(TrainConfig(pool=str(out), selection_fraction=0.5))
    with pytest.raises(EvoloraError, match="selection_fraction must be at least"):
        check_profile_prompts(TrainConfig(pool=str(out), selection_fraction=0.4))
    check_profile_prompts(TrainConfig(pool=str(base), selection_fraction=0.1))  # make: holdout


def test_bad_profiles_are_one_sentence(base, tmp_path, capsys):
    cases = {
        "selection_fraction input should be less than 1": [str(base), "--selection-fraction",
                                                            "1.5"],
        "already holds a pool": [str(base), "-o", str(base)],
        "has no pool.json": [str(tmp_path / "missing")],
    }
    for message, args in cases.items():
        out = [] if "-o" in args else ["-o", str(tmp_path / "out")]
        assert main(["braid", "pool", "profile", *args, *out]) == 2, message
        assert message in capsys.readouterr().err.replace("\n", " "), message
    assert not (tmp_path / "out").exists()
