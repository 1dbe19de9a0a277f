"""Search spaces: unit-cube round trips, conditional parameters and bad specs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolora.errors import EvoloraError
from evolora.swarm.space import Space

SPACE = {
    "lr": {"kind": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "dropout": {"kind": "float", "low": 0.0, "high": 0.5},
    "rank": {"kind": "int", "low": 1, "high": 64, "log": True},
    "batch": {"kind": "int", "low": 2, "high": 9},
    "optimizer": {"kind": "categorical", "choices": ["adam", "sgd", "lion"]},
    "momentum": {
        "kind": "float",
        "low": 0.0,
        "high": 0.99,
        "condition": {"parent": "optimizer", "values": ["sgd"]},
    },
}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6))
def test_decode_encode_decode_is_stable(coords):
    space = Space.from_dict(SPACE)
    params = space.decode(np.array(coords))
    again = space.decode(space.encode(params))
    assert again.keys() == params.keys()
    for name, value in params.items():
        if isinstance(value, str):
            assert again[name] == value
        else:
            assert again[name] == pytest.approx(value, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("rank", list(range(1, 65)))
def test_every_int_value_round_trips_through_the_cube(rank):
    space = Space.from_dict(SPACE)
    point = space.encode({"rank": rank, "optimizer": "adam"})
    assert space.decode(point)["rank"] == rank


def test_categorical_cells_and_conditional_activity():
    space = Space.from_dict(SPACE)
    u = np.full(6, 0.5)
    u[4] = 0.1  # first third: adam
    assert space.decode(u)["optimizer"] == "adam" and "momentum" not in space.decode(u)
    u[4] = 0.5  # middle third: sgd, so momentum is active
    assert space.decode(u)["optimizer"] == "sgd" and "momentum" in space.decode(u)
    assert space.encode({"optimizer": "lion"})[4] == pytest.approx(5 / 6)
    assert list(space.active_mask({"optimizer": "adam"})) == [True] * 5 + [False]


def test_log_float_maps_decades_evenly():
    space = Space.from_dict({"lr": {"kind": "float", "low": 1e-4, "high": 1e0, "log": True}})
    assert space.decode(np.array([0.5]))["lr"] == pytest.approx(1e-2)
    assert space.encode({"lr": 1e-3})[0] == pytest.approx(0.25)


def test_yaml_form_round_trips():
    space = Space.from_dict(SPACE)
    assert Space.from_dict(space.to_dict()).to_dict() == space.to_dict()


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"x": {"kind": "float", "low": 1.0, "high": 1.0}}, ["'x'", "low must be below high"]),
        ({"x": {"kind": "categorical", "choices": []}}, ["'x'", "choices"]),
        ({"x": {"kind": "float", "low": 0.0, "high": 1.0, "log": True}}, ["'x'", "low > 0"]),
        ({"x": {"kind": "complex"}}, ["'x'", "unknown kind", "float, int, categorical"]),
        ({"x": {"kind": "int", "low": 1, "high": 3, "step": 2}}, ["'x'", "step"]),
        (
            {
                "x": {
                    "kind": "float",
                    "low": 0,
                    "high": 1,
                    "condition": {"parent": "y", "values": [1]},
                }
            },
            ["'x'", "'y'"],
        ),
        ({}, ["non-empty"]),
    ],
)
def test_bad_spaces_say_which_parameter_and_why(spec, words):
    with pytest.raises(EvoloraError) as problem:
        Space.from_dict(spec)
    message = str(problem.value)
    assert "\n" not in message
    for word in words:
        assert word in message
