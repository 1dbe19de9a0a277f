import math

import torch

from evolora.reso.sections import StabilityConfig
from evolora.reso.stability import StabilityClass, StabilityMonitor, lyapunov


def feed(states, entropy=1.0, **knobs):
    monitor = StabilityMonitor(StabilityConfig(**knobs))
    reading = None
    for s in states:
        reading = monitor.observe(s, entropy)
    return monitor, reading


def test_a_repeating_trajectory_is_periodic_and_heated():
    g = torch.Generator().manual_seed(0)
    cycle = [torch.randn(32, generator=g) for _ in range(3)]
    monitor, reading = feed(cycle * 6)
    assert reading.kind == StabilityClass.PERIODIC
    assert reading.warning is not None
    assert monitor.suggested_temperature(0.0, reading) > 0.3


def test_separating_trajectories_give_a_positive_exponent_and_converging_ones_a_negative():
    # x_(t+1) = 2 x_t (mod 1) on a circle separates neighbours; a contraction merges them.
    angles = [0.1234]
    for _ in range(15):
        angles.append((angles[-1] * 2) % 1.0)
    chaotic = torch.stack([torch.tensor([math.cos(2 * math.pi * a), math.sin(2 * math.pi * a)])
                           for a in angles])
    assert lyapunov(chaotic)[0] > 0.1
    contracting = torch.stack([torch.tensor([1.0, 0.5**t]) for t in range(16)])
    assert lyapunov(contracting)[0] < 0


def test_chaos_cools_and_a_nan_is_divergent():
    g = torch.Generator().manual_seed(1)
    angles = [0.377]
    for _ in range(15):
        angles.append((angles[-1] * 3) % 1.0)
    states = [torch.tensor([math.cos(2 * math.pi * a), math.sin(2 * math.pi * a)]) + 0.0
              for a in angles]
    monitor, reading = feed(states)
    assert reading.kind in (StabilityClass.CHAOTIC, StabilityClass.DIVERGENT)
    assert monitor.suggested_temperature(1.0, reading) < 1.0
    _, reading = feed([torch.randn(8, generator=g), torch.full((8,), float("nan"))])
    assert reading.kind == StabilityClass.DIVERGENT and reading.warning


def test_entropy_collapse_is_flagged():
    g = torch.Generator().manual_seed(2)
    states = [torch.randn(16, generator=g) * 0.01 + torch.arange(16.0) * t for t in range(12)]
    _, reading = feed(states, entropy=0.001)
    assert reading.collapsed and reading.degenerate
