import pytest
from pydantic import ValidationError

from evolora.ecology.config import EcologyConfig


def test_defaults_are_valid():
    config = EcologyConfig()
    assert config.population.min <= config.population.initial <= config.population.max


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"energy": {"m": -1}}, "m"),
        ({"population": {"min": 5, "initial": 4, "max": 8}}, "population"),
        ({"bogus": 1}, "bogus"),
        ({"learning": {"rules": ["sgd"]}}, "rules"),
        ({"learning": {"rules": ["es", "es"]}}, "twice"),
        ({"learning": {"backprop": {"family_lr": {"logic": 0.0}}}}, "family_lr.logic"),
        ({"learning": {"backprop": {"schedule": "linear"}}}, "schedule"),
    ],
)
def test_invalid_configs_name_the_field(bad, field):
    with pytest.raises(ValidationError) as problem:
        EcologyConfig.model_validate(bad)
    assert field in str(problem.value)
