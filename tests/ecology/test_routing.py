import numpy as np

from evolora.ecology.routing import thompson_route


def test_thompson_routes_each_organelle_to_its_clearly_better_cell():
    successes = np.array([[50, 0], [0, 50]])
    failures = np.array([[0, 50], [50, 0]])
    assert thompson_route(successes, failures, np.random.default_rng(0)).tolist() == [0, 1]


def test_thompson_explores_when_nothing_is_known():
    zeros = np.zeros((1, 2))
    rng = np.random.default_rng(1)
    picks = [thompson_route(zeros, zeros, rng)[0] for _ in range(400)]
    assert 120 < sum(picks) < 280


def test_thompson_choice_frequency_follows_the_posterior():
    rng = np.random.default_rng(2)
    successes, failures = np.array([[6, 4]]), np.array([[4, 6]])
    picks = [thompson_route(successes, failures, rng)[0] for _ in range(2000)]
    share_better = 1 - np.mean(picks)
    assert 0.6 < share_better < 0.9
