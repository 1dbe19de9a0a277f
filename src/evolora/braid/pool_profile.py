"""`profile_pool`: a new pool folder holding a pool's members with every member's skill measured
again, e.g. on more prompts, drawn from the selection share of the holdout split that a braid run
rewards its braider on and never evaluates (`pool make` measures 48 holdout draws per family,
some of them evaluation prompts, which leaves a member's skill a few points apart from its
rivals' within the noise)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from evolora.braid.config import SkillConfig
from evolora.braid.pool import ADAPTER_FILE, POOL_FILE, ModelProfile, load_pool, read_profiles
from evolora.braid.pool_add import skill_settings
from evolora.braid.pool_make import measure_skill, skill_prompts
from evolora.errors import EvoloraError
from evolora.telemetry.atomic import atomic_write_text


def profile_pool(base: str | Path, out: str | Path, examples: int,
                 selection_fraction: float | None, device: str | None = None,
                 on_member: Callable[[str], None] | None = None) -> Path:
    """Write at `out` a pool of `base`'s members whose skill is measured again on `examples`
    prompts per family (distinct prompts of the `selection_fraction` share of the holdout split,
    or holdout draws when None), with the pool's recorded seed, families, difficulties and new
    tokens. The settings are recorded in pool.json (`skill_with`, and the prompts scored per
    family in `skill_prompts`), so `add_member` measures a later member the same way. No make
    config is recorded: `ensure_pool` uses it as is."""
    base, out = Path(base), Path(out)
    if (out / POOL_FILE).exists():
        raise EvoloraError(f"'{out}' already holds a pool; choose another output folder.")
    profiles = read_profiles(base)
    try:
        settings = SkillConfig.model_validate({
            **skill_settings(base, profiles), "skill_examples": examples,
            "selection_fraction": selection_fraction}).model_dump()
    except ValidationError as problem:
        error = problem.errors()[0]
        raise EvoloraError(f"{error['loc'][0]} {error['msg'].lower()}; got "
                           f"{error['input']!r}.") from None
    pool = load_pool(base, device)
    measured = []
    for host, profile in zip(pool.hosts, profiles, strict=True):
        if on_member is not None:
            on_member(profile.name)
        skill = measure_skill(host, settings["families"], settings["difficulties"],
                              settings["skill_examples"], settings["seed"],
                              settings["max_new_tokens"], settings["selection_fraction"])
        measured.append(ModelProfile(**{**profile.describe(), "skill": skill}))
    out.mkdir(parents=True, exist_ok=True)
    if (base / ADAPTER_FILE).is_file():
        shutil.copyfile(base / ADAPTER_FILE, out / ADAPTER_FILE)
    counts = {f: len(skill_prompts(f, k, settings["difficulties"], settings["skill_examples"],
                                   settings["seed"], settings["selection_fraction"]))
              for k, f in enumerate(settings["families"])}
    data = {"version": 1, "members": [p.describe() for p in measured], "made_with": None,
            "skill_with": settings, "skill_prompts": counts}
    atomic_write_text(out / POOL_FILE, json.dumps(data, indent=1) + "\n")
    return out
