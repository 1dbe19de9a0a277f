"""`profile_pool`: a new pool folder holding a pool's members with every member's skill measured
again, e.g. on more prompts, drawn from the selection share of the holdout split that a braid run
rewards its braider on and never evaluates (`pool make` measures 48 holdout draws per family,
some of them evaluation prompts, which leaves a member's skill a few points apart from its
rivals' within the noise)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from evolora.braid.config import SkillConfig
from evolora.braid.pool import (
    ModelProfile,
    check_new_pool_folder,
    load_adapter_tensors,
    load_pool,
    read_profiles,
    save_pool_files,
)
from evolora.braid.pool_add import skill_settings
from evolora.braid.pool_make import measure_skill, skill_prompts
from evolora.errors import EvoloraError


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
    check_new_pool_folder(out)
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
    counts = {f: len(skill_prompts(f, k, settings["difficulties"], settings["skill_examples"],
                                   settings["seed"], settings["selection_fraction"]))
              for k, f in enumerate(settings["families"])}
    return save_pool_files(out, measured, load_adapter_tensors(base), skill_with=settings,
                           skill_prompts=counts)
