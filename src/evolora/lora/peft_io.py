"""PEFT interop: a population member as a PEFT LoRA adapter folder, and back.

The folder holds ``adapter_config.json`` (written by PEFT's own `LoraConfig`) and
``adapter_model.safetensors`` with keys ``base_model.model.<layer>.lora_A.weight`` (r, in) and
``...lora_B.weight`` (out, r), so ``peft.PeftModel.from_pretrained(base_model, path)`` loads it
unchanged. Only safetensors adapters are read: pickled ``adapter_model.bin`` files never are.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from evolora.errors import EvoloraError
from evolora.lora.population import LoRAPopulation

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<layer>.+)\.lora_(?P<which>[AB])(?:\.[^.]+)?\.weight$"
)
# Features of a PEFT LoRA config that change what the weights mean; evolora reads plain LoRA only.
_UNSUPPORTED = {"use_dora": False, "fan_in_fan_out": False, "bias": "none", "lora_bias": False,
                "modules_to_save": None, "rank_pattern": {}, "alpha_pattern": {}}


def export_peft(
    population: LoRAPopulation, member: int, path: str | Path,
    base_model_name_or_path: str | None = None,
) -> Path:
    """Write member `member` as a PEFT LoRA adapter folder at `path`; returns the folder."""
    from peft import LoraConfig

    i = population._one(member)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    config = LoraConfig(
        r=population.rank,
        lora_alpha=population.alpha,
        target_modules=population.peft_targets,
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=base_model_name_or_path or population.base_name,
        inference_mode=True,
    )
    config.save_pretrained(str(out))
    tensors = {}
    for name in population.layer_names:
        tensors[f"base_model.model.{name}.lora_A.weight"] = population.A[name][i].contiguous().cpu()
        tensors[f"base_model.model.{name}.lora_B.weight"] = population.B[name][i].contiguous().cpu()
    save_file(tensors, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    return out


@torch.no_grad()
def import_peft(path: str | Path, population: LoRAPopulation, member: int,
                check_base_model: bool = True) -> None:
    """Read the PEFT LoRA adapter folder at `path` into population slot `member`.

    The adapter must have the population's rank and cover a subset of its layers (layers it does
    not cover get a zero update). Its alpha may differ: B is rescaled so the update is unchanged.
    A population with the host basis keeps the part of the adapter its basis can hold (`project`).
    """
    i = population._one(member)
    folder = Path(path)
    config = _read_config(folder)
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        other = " (only adapter_model.bin, which evolora never unpickles)" if (
            folder / "adapter_model.bin").is_file() else ""
        raise EvoloraError(f"PEFT adapter weights {weights_path} not found{other}.")
    if check_base_model:
        _check_base(config.get("base_model_name_or_path"), population.base_name, folder)
    if config.get("r") != population.rank:
        raise EvoloraError(
            f"PEFT adapter {folder} has rank r={config.get('r')} but the population has rank "
            f"{population.rank}; make a population of rank {config.get('r')} to load it."
        )
    alpha = float(config.get("lora_alpha", population.rank))
    rank = population.rank
    peft_scale = alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)
    factors = _read_factors(weights_path, population)
    for name, (a, b) in factors.items():
        population._check_factor_shapes(name, tuple(a.shape), tuple(b.shape))
    for name in population.layer_names:
        a, b = factors.get(name, (None, None))
        if a is None:
            population.A[name][i] = 0.0
            population.B[name][i] = 0.0
            continue
        population.A[name][i] = a.to(population.device, population.dtype)
        population.B[name][i] = (b.double() * (peft_scale / population.scale)).to(
            population.device, population.dtype)
    population.project(i)


def _read_config(folder: Path) -> dict:
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise EvoloraError(f"{folder} is not a PEFT adapter folder: {CONFIG_FILE} is missing.")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as problem:
        raise EvoloraError(f"{config_path} is not valid JSON ({problem}).") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        kind = config.get("peft_type") if isinstance(config, dict) else None
        raise EvoloraError(f"{config_path} describes a {kind!r} adapter; only LORA is supported.")
    for field, plain in _UNSUPPORTED.items():
        if config.get(field, plain) not in (plain, None, {}, False):
            raise EvoloraError(
                f"{config_path} sets {field}={config[field]!r}; evolora imports plain LoRA only "
                f"({field}={plain!r})."
            )
    return config


def _check_base(adapter_base: str | None, host_base: str | None, folder: Path) -> None:
    if not adapter_base or not host_base:
        return
    if adapter_base == host_base or Path(adapter_base).name == Path(host_base).name:
        return
    raise EvoloraError(
        f"PEFT adapter {folder} was made for base model {adapter_base!r}, but the population's "
        f"host is {host_base!r}; pass check_base_model=False if they are the same model."
    )


def read_peft_update(path: str | Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """A PEFT LoRA adapter folder's exact update per layer, as float32 factors (A (r, in),
    B (out, r)) with the adapter's scale folded into B, so that ΔW = B @ A; no host needed."""
    folder = Path(path)
    config = _read_config(folder)
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise EvoloraError(f"PEFT adapter weights {weights_path} not found.")
    rank = int(config.get("r", 0))
    alpha = float(config.get("lora_alpha", rank))
    scale = alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)
    return {
        name: (a.float(), b.float() * scale)
        for name, (a, b) in _factor_tensors(weights_path).items()
    }


def _read_factors(weights_path: Path, population: LoRAPopulation) -> dict:
    factors = _factor_tensors(weights_path)
    unknown = [k for k in factors if k not in population.layer_shapes]
    if unknown:
        raise EvoloraError(
            f"PEFT adapter targets layer(s) the population does not have: {unknown[:3]} "
            f"(population targets {', '.join(population.targets)}, e.g. "
            f"{population.layer_names[0]})."
        )
    return factors


def _factor_tensors(weights_path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError) as problem:
        raise EvoloraError(f"{weights_path} is not a readable safetensors file ({problem}).") \
            from None
    factors: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        match = _KEY.match(key)
        if match is None:
            raise EvoloraError(f"{weights_path} holds {key!r}, which is not a LoRA A/B weight.")
        factors.setdefault(match["layer"], {})[match["which"]] = tensor
    incomplete = [k for k, ab in factors.items() if set(ab) != {"A", "B"}]
    if incomplete:
        raise EvoloraError(f"{weights_path} lacks lora_A or lora_B for layer {incomplete[0]}.")
    return {k: (ab["A"], ab["B"]) for k, ab in factors.items()}
