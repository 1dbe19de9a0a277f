"""load_config: YAML into pydantic models, every problem one sentence naming file and field."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from evolora.errors import EvoloraError
from evolora.telemetry import dump_config, load_config, validate_config


class Energy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    m: float = Field(0.5, ge=0)
    tax: float = Field(0.1, lt=1)


class Agent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    rank: int = 4

    @field_validator("rank")
    @classmethod
    def power_of_two(cls, rank: int) -> int:
        if rank & (rank - 1):
            raise ValueError(f"rank must be a power of two, like 4 or 8, not {rank}")
        return rank


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int
    executor: Literal["local", "process", "ray"] = "local"
    energy: Energy = Energy()
    agents: list[Agent] = []
    pools: dict[str, Energy] = {}


def load(tmp_path, text: str) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path, Config)


def error_of(tmp_path, text: str) -> str:
    with pytest.raises(EvoloraError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert "\n" not in message
    return message.replace(str(tmp_path / "config.yaml"), "config.yaml")


def test_valid_file_loads_and_round_trips(tmp_path):
    config = load(tmp_path, "seed: 3\nenergy: {m: 2}\nagents: [{name: a}, {name: b, rank: 8}]\n")
    assert config.energy.m == 2.0
    assert [agent.rank for agent in config.agents] == [4, 8]
    assert load(tmp_path, dump_config(config)) == config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed: 1\nenergy: {m: -1}\n", "config.yaml: field 'energy.m': must be >= 0 (got -1)"),
        ("seed: 1\nenergy: {tax: 2}\n", "config.yaml: field 'energy.tax': must be < 1 (got 2)"),
        (
            "sed: 1\n",
            "config.yaml: field 'seed': required but missing (and 1 more problem)",
        ),
        (
            "seed: 1\nexecuter: ray\n",
            "config.yaml: field 'executer': unknown key, did you mean 'executor'? "
            "(valid keys: seed, executor, energy, agents, pools)",
        ),
        (
            "seed: 1\nagents: [{name: a}, {nmae: b}]\n",
            "config.yaml: field 'agents[1].name': required but missing (and 1 more problem)",
        ),
        (
            "seed: 1\nagents: [{name: a, rnk: 2}]\n",
            "config.yaml: field 'agents[0].rnk': unknown key, did you mean 'rank'? "
            "(valid keys: name, rank)",
        ),
        (
            "seed: 1\npools: {north: {mm: 1}}\n",
            "config.yaml: field 'pools.north.mm': unknown key, did you mean 'm'? "
            "(valid keys: m, tax)",
        ),
        (
            "seed: abc\n",
            "config.yaml: field 'seed': must be a valid integer, unable to parse string as an "
            "integer (got 'abc')",
        ),
        (
            "seed: 1\nexecutor: dask\n",
            "config.yaml: field 'executor': must be 'local', 'process' or 'ray' (got 'dask')",
        ),
        (
            "seed: 1\nagents: [{name: a, rank: 6}]\n",
            "config.yaml: field 'agents[0].rank': rank must be a power of two, like 4 or 8, not 6 "
            "(got 6)",
        ),
    ],
)
def test_bad_values_are_one_sentence(tmp_path, text, message):
    assert error_of(tmp_path, text) == message


def test_bad_files(tmp_path):
    with pytest.raises(EvoloraError, match=r"^Config file '.*nope\.yaml' does not exist\.$"):
        load_config(tmp_path / "nope.yaml", Config)
    with pytest.raises(EvoloraError, match="is a folder, not a file"):
        load_config(tmp_path, Config)
    assert error_of(tmp_path, "seed: 1\nenergy: [1\n").startswith("config.yaml: line 3: not valid")
    assert error_of(tmp_path, "- 1\n- 2\n") == (
        "config.yaml: the top level must be a mapping of settings (key: value), not a list."
    )
    assert error_of(tmp_path, "") == "config.yaml: field 'seed': required but missing"


def test_validate_config_names_its_source():
    with pytest.raises(EvoloraError, match=r"^preset 'tiny': field 'seed': required but missing$"):
        validate_config({}, Config, source="preset 'tiny'")
