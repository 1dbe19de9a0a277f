"""`add_member`: a new pool folder holding a pool's members plus one local HF model (kind "hf"),
e.g. the host with every weight fine-tuned on one family, profiled as `pool make` profiles its
members (size, shape, cost per token, skill measured with the pool's recorded settings on the
same prompts);
`save_model_folder` writes such a model folder."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from evolora.braid.config import SkillConfig
from evolora.braid.pool import (
    POOL_FILE,
    ModelProfile,
    check_new_pool_folder,
    check_shared_tokenizer,
    load_adapter_tensors,
    made_with,
    profile_of,
    read_profiles,
    save_pool_files,
)
from evolora.braid.pool_make import measure_skill
from evolora.errors import EvoloraError
from evolora.hosts import Host, load_host


def save_model_folder(host: Host, folder: str | Path) -> Path:
    """Save `host`'s model and its tokenizer as a local HF model folder, which a pool takes as a
    member of kind "hf" (`add_member`, `evolora braid pool add`)."""
    from evolora.hosts.loading import quiet_transformers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        host.model.save_pretrained(folder)
    host.tokenizer.save_pretrained(folder)
    return folder


def skill_settings(folder: str | Path, profiles: list[ModelProfile]) -> dict:
    """How the pool's members had their skill measured (`SkillConfig`'s fields): the record of
    a previous `profile_pool` or `add_member`, else the make config, else `SkillConfig`'s
    defaults over the families the profiles were measured on."""
    data = json.loads((Path(folder) / POOL_FILE).read_text(encoding="utf-8"))
    recorded = data.get("skill_with") or made_with(folder) or {"families": list(profiles[0].skill)}
    try:
        config = SkillConfig.model_validate(
            {k: v for k, v in recorded.items() if k in SkillConfig.model_fields})
    except ValidationError as problem:
        raise EvoloraError(f"'{folder}/{POOL_FILE}' records unusable skill settings "
                           f"({problem.errors()[0]['msg']}).") from None
    return config.model_dump()


def add_member(base: str | Path, model_dir: str | Path, name: str, domain: str,
               out: str | Path, device: str | None = None) -> Path:
    """Write at `out` a pool of `base`'s members plus the HF model in `model_dir` as member
    `name` of kind "hf" (its task family `domain`, or "general"), its skill measured as the
    pool's members had theirs. The member's source is `model_dir`'s absolute path, so the model
    folder must stay where it is. No make config is recorded: `ensure_pool` uses it as is."""
    base, model_dir, out = Path(base), Path(model_dir), Path(out)
    check_new_pool_folder(out)
    profiles = read_profiles(base)
    if not name or name in {p.name for p in profiles}:
        raise EvoloraError(f"The new member needs a name that is not empty and not already in "
                           f"the pool ({[p.name for p in profiles]}); got {name!r}.")
    settings = skill_settings(base, profiles)
    if domain not in ("general", *settings["families"]):
        raise EvoloraError(f"--domain must be 'general' or one of the pool's families "
                           f"{settings['families']}; got {domain!r}.")
    if not model_dir.is_dir():
        raise EvoloraError(f"Model folder '{model_dir}' does not exist; give a local HF model "
                           "folder (config.json, weights and tokenizer).")
    host = load_host(str(model_dir), device=device)
    check_shared_tokenizer([load_host(profiles[0].source, device=device), host],
                           [profiles[0].name, name])
    skill = measure_skill(host, settings["families"], settings["difficulties"],
                          settings["skill_examples"], settings["seed"],
                          settings["max_new_tokens"], settings["selection_fraction"])
    profiles.append(profile_of(host, name, "hf", str(model_dir.resolve()), domain=domain,
                               skill=skill))
    counts = json.loads((base / POOL_FILE).read_text(encoding="utf-8")).get("skill_prompts")
    return save_pool_files(out, profiles, load_adapter_tensors(base), skill_with=settings,
                           **({} if counts is None else {"skill_prompts": counts}))
