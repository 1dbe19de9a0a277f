"""Regions, overlap, and the diversity metric on point sets whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evolora.swarm.diversity import coverage, mean_pairwise_distance
from evolora.swarm.heatmap import Heatmap
from evolora.swarm.region import Box, overlap, shrink, split


def box(lo, hi):
    return Box(np.array(lo, float), np.array(hi, float))


def test_split_cuts_the_widest_side_halfway_to_the_farther_edge():
    near, far = split(box([0, 0], [1, 0.5]), np.array([0.6, 0.2]))
    assert np.allclose(near.lo, [0.3, 0]) and np.allclose(near.hi, [1, 0.5])
    assert np.allclose(far.lo, [0, 0]) and np.allclose(far.hi, [0.3, 0.5])
    assert near.volume() + far.volume() == pytest.approx(0.5)


def test_split_leaves_room_around_a_point_near_an_edge():
    near, far = split(box([0, 0], [1, 1]), np.array([0.01, 0.5]))
    assert near.hi[0] == pytest.approx(0.505) and far.lo[0] == pytest.approx(0.505)
    assert near.contains(np.array([0.01, 0.5]))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (([0, 0], [0.5, 0.5]), ([0.5, 0.5], [1, 1]), 0.0),  # touching corners
        (([0, 0], [1, 1]), ([0.2, 0.2], [0.4, 0.4]), 1.0),  # one inside the other
        (([0, 0], [0.4, 0.4]), ([0.2, 0.0], [0.6, 0.4]), math.sqrt(0.5 * 1.0)),
        (([0, 0], [0.2, 1]), ([0.5, 0], [1, 1]), 0.0),  # apart
    ],
)
def test_overlap_is_the_per_side_geometric_mean(a, b, expected):
    assert overlap(box(*a), box(*b)) == pytest.approx(expected)
    assert overlap(box(*b), box(*a)) == pytest.approx(expected)


def test_shrink_stays_inside_and_centres_on_the_point():
    outer = box([0, 0], [1, 1])
    inner = shrink(outer, np.array([0.5, 0.95]), 0.5)
    assert np.allclose(inner.width, [0.5, 0.5])
    assert np.allclose(inner.lo, [0.25, 0.5]) and np.allclose(inner.hi, [0.75, 1.0])


def test_box_around_slides_inside_the_cube():
    inner = Box.around(np.array([0.0, 1.0]), 0.4)
    assert np.allclose(inner.lo, [0.0, 0.6]) and np.allclose(inner.hi, [0.4, 1.0])


def test_diversity_of_known_point_sets():
    assert mean_pairwise_distance(np.full((5, 3), 0.3)) == 0.0
    corners = np.array([[0.0, 0.0], [1.0, 1.0]])
    assert mean_pairwise_distance(corners) == pytest.approx(1.0)  # sqrt(2) / sqrt(2)
    square = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float)
    # 4 sides of length 1 and 2 diagonals of sqrt(2), over sqrt(2)
    assert mean_pairwise_distance(square) == pytest.approx(
        (4 + 2 * math.sqrt(2)) / 6 / math.sqrt(2)
    )
    uniform = np.random.default_rng(0).random((400, 6))
    assert mean_pairwise_distance(uniform) == pytest.approx(0.41, abs=0.02)


def test_coverage_counts_occupied_cells():
    points = np.array([[0.1, 0.1], [0.2, 0.2], [0.9, 0.9], [0.6, 0.1]])
    assert coverage(points, bins=2) == pytest.approx(3 / 4)
    assert coverage(points, bins=10) == pytest.approx(4 / 100)


def test_heatmap_counts_and_least_visited():
    heat = Heatmap(2, 2)
    for _ in range(5):
        heat.add(np.array([0.1, 0.1]), 1.0)
    heat.add(np.array([0.9, 0.9]), 0.5)
    assert list(heat.count(np.array([[0.2, 0.3], [0.7, 0.8], [0.2, 0.9]]))) == [5, 1, 0]
    assert heat.visited == 2 and heat.coverage() == pytest.approx(0.5)
    point = heat.least_visited(np.random.default_rng(0))
    assert heat.count(point[None])[0] == 0


def test_heatmap_handles_many_dimensions():
    heat = Heatmap(40, 4)
    heat.add(np.full(40, 0.99), 0.0)
    assert heat.count(np.full((1, 40), 0.9))[0] == 1
