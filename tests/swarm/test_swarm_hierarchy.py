"""Decisions of managers and the supervisor on small hand-built teams."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evolora.swarm.agent import Agent
from evolora.swarm.config import ManagerConfig, SupervisorConfig, SwarmConfig
from evolora.swarm.manager import Team
from evolora.swarm.region import Box
from evolora.swarm.strategies import CMAES, Context, TrustRegion
from evolora.swarm.supervisor import Supervisor


def make_team(team_id=0, strategies=("trust", "random"), region=None, dim=2):
    region = region or Box.unit(dim)
    agents = [Agent(team_id * 10 + i, region, s) for i, s in enumerate(strategies)]
    return Team(team_id, region, agents, born=0)


def test_stuck_agent_rotates_strategy_and_moves_to_a_split():
    team = make_team(strategies=("trust", "cmaes"))
    agent = team.agents[0]
    team.tell(agent, np.array([0.3, 0.3]), 1.0)
    for _ in range(12):
        team.tell(agent, np.array([0.35, 0.3]), 2.0)
    events = team.manage(ManagerConfig(), ["trust", "cmaes"], np.random.default_rng(0), 10)
    assert any(e["event"] == "reassign" and "stuck" in e["reason"] for e in events)
    assert agent.strategy_name == "cmaes"
    assert agent.region.volume() == pytest.approx(team.region.volume() / 2, rel=0.6)
    assert agent.region.contains(team.best_u)


def test_lagging_agent_adopts_the_memory_suggestion():
    team = make_team(strategies=("trust", "random"))
    good, bad = team.agents
    for value in np.linspace(0.0, 10.0, 12):
        team.tell(good, np.array([0.2, 0.2]) + value / 100, value)
    team.tell(bad, np.array([0.9, 0.9]), 9.0)
    for _ in range(5):
        team.tell(bad, np.array([0.9, 0.8]), 9.5)
    events = team.manage(
        ManagerConfig(lag_fraction=0.5), ["trust", "random"], np.random.default_rng(0), 12
    )
    adopted = [e for e in events if e["event"] == "reassign" and e["agent"] == bad.id]
    assert adopted and "suggestion" in adopted[0]["reason"]
    assert bad.strategy_name == "trust"  # the context that found the team's best
    assert np.allclose(bad.best_u, [0.2, 0.2]) and bad.best_loss == 0.0


def test_lagging_agent_migrates_to_a_better_best_a_peer_sent():
    team = make_team(strategies=("trust", "random"))
    good, bad = team.agents
    for value in np.linspace(1.0, 10.0, 12):
        team.tell(good, np.array([0.2, 0.2]) + value / 100, value)
    for _ in range(6):
        team.tell(bad, np.array([0.9, 0.8]), 9.5)
    peer = make_team(1)
    peer.tell(peer.agents[0], np.array([0.7, 0.1]), 0.5)  # better than anything team 0 has
    team.receive(peer.message())
    events = team.manage(ManagerConfig(), ["trust", "random"], np.random.default_rng(0), 12)
    [moved] = [e for e in events if e["event"] == "reassign" and e["agent"] == bad.id]
    assert "team 1's better best" in moved["reason"]
    assert np.allclose(bad.best_u, [0.7, 0.1]) and bad.best_loss == 0.5
    assert bad.region.contains(np.array([0.7, 0.1]))
    # Without the message the same agent goes to its own team's best instead.
    team.forget(1)
    bad.reassign("random", team.region)
    bad.best_u, bad.best_loss = np.array([0.9, 0.8]), 9.5
    events = team.manage(ManagerConfig(), ["trust", "random"], np.random.default_rng(0), 12)
    assert np.allclose(bad.best_u, good.best_u)


def test_agent_at_the_team_best_is_left_alone():
    team = make_team(strategies=("trust", "random"))
    good, other = team.agents
    for value in np.linspace(0.0, 10.0, 12):
        team.tell(good, np.array([0.2, 0.2]) + value / 100, value)
        team.tell(other, np.array([0.6, 0.6]) + value / 100, value + 0.1)
    events = team.manage(ManagerConfig(), ["trust", "random"], np.random.default_rng(0), 50)
    assert not [e for e in events if e["event"] == "reassign"]


def test_messages_fill_recombination_partners_and_claimed_regions():
    a, b = make_team(0), make_team(1, region=Box(np.array([0.5, 0.0]), np.array([1.0, 1.0])))
    b.tell(b.agents[0], np.array([0.7, 0.7]), 0.5)
    a.receive(b.message())
    assert any(np.allclose(p, [0.7, 0.7]) for p in a.peers_for(a.agents[0]))
    assert a._claimed(Box(np.array([0.6, 0.0]), np.array([0.9, 1.0]))) == pytest.approx(1.0)
    a.forget(1)
    assert a.peers_for(a.agents[0]) == [] and a._claimed(Box.unit(2)) == 0.0


def test_random_explorers_keep_out_of_regions_peers_claimed():
    team = make_team(0, strategies=("random",), region=Box(np.array([0.3, 0.0]), np.ones(2)))
    peer = make_team(1, region=Box(np.array([0.0, 0.0]), np.array([0.6, 1.0])))
    team.receive(peer.message())
    assert len(team.claimed_by_peers()) == 1
    rng = np.random.default_rng(0)
    context = Context(claimed=team.claimed_by_peers())
    points = np.stack([team.agents[0].ask(rng, context) for _ in range(200)])
    assert np.mean(points[:, 0] <= 0.6) < 0.02  # only when all eight candidates fell inside
    free = np.stack([team.agents[0].ask(rng, Context()) for _ in range(200)])
    assert np.mean(free[:, 0] <= 0.6) > 0.3
    clone = make_team(2, region=Box(np.array([0.1, 0.1]), np.array([0.3, 0.3])))
    clone.receive(peer.message())
    assert clone.claimed_by_peers() == []  # nested in the peer's region: not kept out


def supervisor(**changes):
    return Supervisor(SwarmConfig(supervisor=SupervisorConfig(**changes)), dim=2)


def test_overlapping_teams_move_the_worse_one_to_open_space():
    sup = supervisor(cloning=False, diversity_reseed=False)
    a, b = sup.new_team(Box.unit(2), 0), sup.new_team(Box.unit(2), 0)
    a.tell(a.agents[0], np.array([0.1, 0.1]), 1.0)
    b.tell(b.agents[0], np.array([0.12, 0.1]), 5.0)
    for _ in range(30):
        sup.observe(np.array([0.1, 0.1]), 1.0)
    events = sup.act([a, b], 30, np.random.default_rng(0))
    assert [e["event"] for e in events] == ["reallocate"] and events[0]["team"] == b.id
    assert b.best_u is None and not b.region.contains(np.array([0.1, 0.1]))


def test_overlap_check_off_leaves_teams_in_place():
    sup = supervisor(overlap=False, cloning=False, diversity_reseed=False)
    a, b = sup.new_team(Box.unit(2), 0), sup.new_team(Box.unit(2), 0)
    assert sup.act([a, b], 30, np.random.default_rng(0)) == []


def test_leading_team_is_cloned_and_stale_worst_is_retired():
    sup = supervisor(overlap=False, diversity_reseed=False, retire_after=5, min_teams=2)
    teams = [sup.new_team(Box.unit(2), 0) for _ in range(3)]
    teams[0].tell(teams[0].agents[0], np.array([0.2, 0.2]), 0.1)
    teams[1].tell(teams[1].agents[0], np.array([0.8, 0.8]), 3.0)
    for _ in range(6):
        teams[2].tell(teams[2].agents[0], np.array([0.5, 0.9]), 9.0)
    events = sup.act(teams, 40, np.random.default_rng(0))
    kinds = {e["event"]: e for e in events}
    assert kinds["retire"]["team"] == 2 and all(t.id != 2 for t in teams)
    clone = teams[-1]
    assert kinds["clone"]["parent"] == 0 and clone.parent == 0
    assert np.allclose(clone.agents[0].best_u, [0.2, 0.2]) and clone.region.volume() < 1.0
    # No new improvement: no second clone.
    assert not [e for e in sup.act(teams, 80, np.random.default_rng(0)) if e["event"] == "clone"]


def test_low_diversity_reseeds_the_worst_team():
    sup = supervisor(overlap=False, cloning=False, diversity_threshold=0.2)
    a, b = sup.new_team(Box.unit(2), 0), sup.new_team(Box.unit(2), 0)
    a.tell(a.agents[0], np.array([0.5, 0.5]), 1.0)
    b.tell(b.agents[0], np.array([0.51, 0.5]), 2.0)
    for _ in range(20):
        sup.observe(np.array([0.5, 0.5]) + np.random.default_rng(1).normal(0, 0.01, 2), 1.0)
    events = sup.act([a, b], 20, np.random.default_rng(0))
    assert events[0]["event"] == "reseed" and events[0]["team"] == b.id
    assert sup.diversity < 0.2 and b.best_u is None


def test_cmaes_finds_the_minimum_of_a_quadratic():
    rng = np.random.default_rng(0)
    agent = Agent(0, Box.unit(3), "cmaes")
    assert isinstance(agent.strategy, CMAES)
    target = np.array([0.3, 0.6, 0.45])
    for _ in range(400):
        u = agent.ask(rng, Context())
        agent.tell(u, float(np.sum((u - target) ** 2)))
    assert agent.best_loss < 1e-8


def test_trust_region_radius_follows_success():
    strategy = TrustRegion(0.1)
    strategy.observe(np.zeros(2), 1.0)
    assert strategy.radius == pytest.approx(0.15)
    for _ in range(8):
        strategy.observe(np.zeros(2), 2.0)
    assert strategy.radius == pytest.approx(0.15 * 1.5**-2)
    assert math.isinf(Agent(0, Box.unit(2), "trust").best_loss)
