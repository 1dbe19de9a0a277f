"""`load_host(spec)`: the built-in host, a local Hugging Face folder, or a cached "org/name".

Nothing here reaches the network: every transformers / huggingface_hub call is local-files-only.
Each way a folder can be unusable ends in one `EvoloraError` sentence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evolora.errors import EvoloraError

BUILTIN_DIR = Path(__file__).parent / "builtin"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-file progress bars (loading and saving weights) inside the block."""
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()


def pick_device(device: str | None = None):
    """The torch device to run on: `device` when given, else cuda when available, else cpu."""
    import torch

    if device is not None:
        try:
            target = torch.device(device)
        except RuntimeError as problem:
            raise EvoloraError(f"device '{device}' is not a torch device ({problem}).") from None
        check_available(target, device)
        return target
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_available(target, asked: str) -> None:
    """Raise an EvoloraError unless the accelerator `target` names exists on this machine."""
    import torch

    if target.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            build = "a CPU-only torch build" if torch.version.cuda is None else "no visible GPU"
            raise EvoloraError(
                f"device '{asked}' needs CUDA, which this machine lacks ({build}); use "
                "--device cpu or leave the device unset."
            )
        if target.index is not None and target.index >= count:
            raise EvoloraError(
                f"device '{asked}' does not exist: this machine has {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}."
            )
    elif target.type == "mps" and not torch.backends.mps.is_available():
        raise EvoloraError(f"device '{asked}' needs Apple MPS, which this machine lacks.")


def resolve_spec(spec: str) -> Path:
    """The local folder a host spec points to ('builtin', a folder path, or a cached 'org/name')."""
    if spec == "builtin":
        if not (BUILTIN_DIR / "config.json").is_file():
            raise EvoloraError(
                f"The built-in host checkpoint is missing from {BUILTIN_DIR}; reinstall evolora or "
                "retrain it: `evolora host train --config configs/host_builtin.yaml --out DIR`."
            )
        return BUILTIN_DIR
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise EvoloraError(
                f"Host spec '{spec}' is a file; give a folder holding config.json and weights."
            )
        return path
    if _HUB_ID.match(spec):
        return _from_hf_cache(spec)
    raise EvoloraError(
        f"Host spec '{spec}' is neither 'builtin', an existing folder, nor an 'org/name' model id."
    )


def _from_hf_cache(repo_id: str) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        raise EvoloraError(
            f"Model '{repo_id}' is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}); "
            f"download it where there is network (`hf download {repo_id}`) and copy the cache "
            "here (or set HF_HOME), or pass the path of a local model folder."
        ) from None


def check_folder(folder: Path) -> None:
    """Raise an EvoloraError unless `folder` holds a causal LM config, weights and a tokenizer."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise EvoloraError(
            f"{folder} is not a model folder: it has no config.json (expected a Hugging Face "
            "causal LM saved with save_pretrained)."
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise EvoloraError(f"{config_file} is not valid JSON.") from None
    _check_causal(config, config_file)
    _check_weights(folder)
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise EvoloraError(
            f"{folder} has no tokenizer (none of {', '.join(_TOKENIZER_FILES)}); save the "
            "tokenizer into the model folder with tokenizer.save_pretrained."
        )


def _check_causal(config: dict, config_file: Path) -> None:
    from transformers import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING,
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    )

    import evolora.reso  # noqa: F401  registers evolora's own architecture ("reso") with transformers

    model_type = config.get("model_type")
    causal_classes = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    registered = model_type in CONFIG_MAPPING and CONFIG_MAPPING[model_type] in (
        MODEL_FOR_CAUSAL_LM_MAPPING
    )
    if registered:  # a causal LM registered at run time, e.g. evolora.reso's ResoForCausalLM
        causal_classes.add(MODEL_FOR_CAUSAL_LM_MAPPING[CONFIG_MAPPING[model_type]].__name__)
    architectures = config.get("architectures") or []
    if (model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not registered) or (
        architectures and not causal_classes.intersection(architectures)
    ):
        kind = ", ".join(architectures) or f"model_type '{model_type}'"
        raise EvoloraError(
            f"{config_file.parent} holds {kind}, which is not a causal language model; a host "
            "must load with AutoModelForCausalLM (e.g. a Llama, Qwen2, Gemma or GPT-2 checkpoint)."
        )


def _check_weights(folder: Path) -> None:
    from safetensors import safe_open

    shards = sorted(folder.glob("*.safetensors"))
    if not shards and not any(folder.glob("*.bin")):
        raise EvoloraError(
            f"{folder} is not a model folder: it has no weights (model.safetensors or "
            "pytorch_model.bin)."
        )
    for shard in shards:
        try:
            with safe_open(str(shard), framework="pt") as handle:
                handle.keys()
        except Exception as problem:  # safetensors raises its own error types for bad headers
            raise EvoloraError(
                f"{shard} is not a valid safetensors file ({_first_line(problem)}); re-save or "
                "re-download the model."
            ) from None


def _first_line(problem: Exception) -> str:
    text = str(problem).strip().splitlines()
    return text[0] if text else type(problem).__name__


def load_host(spec: str = "builtin", device: str | None = None, precision="fp32"):
    """A frozen `Host` from 'builtin', a local HF model folder, or 'org/name' in the HF cache,
    running in `precision`: "fp32" (default, exact and the same on every machine), "bf16",
    "auto" (bf16 where the start-up probe shows it pays; see precision.py), or a `Precision`
    recorded by an earlier run (used as is)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evolora.hosts.host import Host
    from evolora.hosts.precision import check_precision

    check_precision(precision)
    folder = resolve_spec(spec)
    check_folder(folder)
    target = pick_device(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as problem:
        raise EvoloraError(
            f"The tokenizer in {folder} could not be loaded ({_first_line(problem)})."
        ) from None
    dtype = torch.float32 if target.type == "cpu" else "auto"
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=dtype)
    except Exception as problem:
        raise EvoloraError(
            f"The model in {folder} could not be loaded ({_first_line(problem)})."
        ) from None
    check_vocabulary(tokenizer, model, folder)
    return Host(model.to(target), tokenizer, name=spec, precision=precision)


def check_vocabulary(tokenizer, model, folder: Path) -> None:
    """Raise an EvoloraError when ordinary text or the pad/bos/eos tokens the host adds would
    give ids past the model's embedding table (an added token that only appears when written
    out literally, such as a spare `<|endoftext|>`, is allowed)."""
    rows = model.get_input_embeddings().num_embeddings
    used = [tokenizer.vocab_size - 1, tokenizer.pad_token_id, tokenizer.bos_token_id,
            tokenizer.eos_token_id]  # fmt: skip
    largest = max(i for i in used if i is not None)
    if largest >= rows:
        raise EvoloraError(
            f"The tokenizer in {folder} makes token ids up to {largest:,} but the model's "
            f"embedding has {rows:,} rows, so it would crash on them; save the tokenizer the "
            "model was trained with (or resize the model's embeddings) into the folder."
        )


def check_adaptable(model, name: str) -> None:
    """Raise an EvoloraError when the model keeps its projections in GPT-2-style Conv1D layers,
    which evolora's adapters (on torch.nn.Linear layers) cannot adapt."""
    from transformers.pytorch_utils import Conv1D

    if any(isinstance(module, Conv1D) for module in model.modules()):
        raise EvoloraError(
            f"Host '{name}' keeps its projections in GPT-2-style Conv1D layers, which evolora's "
            "adapters do not adapt (they adapt torch.nn.Linear layers); use a model with Linear "
            "projections such as Llama, Qwen2, Gemma, Mistral or Phi."
        )
