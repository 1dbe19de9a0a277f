"""`evolora host train`: train the built-in host (tokenizer, then a small Llama) from a config.

A run lives in a telemetry `RunDir`: the config, a `metrics` stream, checkpoints holding the model
and AdamW state, and at the end the Hugging Face export in `<run>/host/` that `load_host` reads.
Batches depend only on (seed, step), so `--resume` continues exactly where a killed run stopped.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from evolora.hosts.attention import PROBE_ROWS, Attention, resolve_attention, set_attention
from evolora.hosts.corpus import MixtureBatches, sample_task_examples, shakespeare_texts, task_line
from evolora.hosts.loading import quiet_transformers
from evolora.hosts.precision import autocast, resolve_precision
from evolora.hosts.tokenizer import train_tokenizer
from evolora.hosts.train_config import HostTrainConfig, ModelShape
from evolora.telemetry import Progress, RunDir

TOKENIZER_DIR = "tokenizer"
EXPORT_DIR = "host"


def build_model(shape: ModelShape, tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    """A randomly initialised Llama causal LM of `shape` over `tokenizer`'s vocabulary."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_heads,
        max_position_embeddings=shape.max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def learning_rate(config: HostTrainConfig, step: int) -> float:
    """Linear warm-up to `lr`, then cosine decay to `min_lr_ratio * lr` at the last step."""
    optim = config.optim
    if step < optim.warmup_steps:
        return optim.lr * (step + 1) / optim.warmup_steps
    span = max(1, optim.steps - optim.warmup_steps)
    progress = min(1.0, (step - optim.warmup_steps) / span)
    floor = optim.lr * optim.min_lr_ratio
    return floor + 0.5 * (optim.lr - floor) * (1 + math.cos(math.pi * progress))


def weighted_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Next-token cross-entropy averaged with a weight per target token. logits (B, T, V)."""
    per_token = torch.nn.functional.cross_entropy(
        logits.float().flatten(0, 1), targets.flatten(), reduction="none"
    )
    flat = weights.flatten()
    return (per_token * flat).sum() / flat.sum()


def forward_backward(model, rows: torch.Tensor, weights: torch.Tensor, precision) -> torch.Tensor:
    """One training forward of `rows` (B, T + 1) under `precision`'s autocast and the backward of
    its weighted next-token loss; returns the loss (gradients accumulate in the model)."""
    with autocast(rows.device, precision):
        logits = model(input_ids=rows[:, :-1]).logits
    loss = weighted_loss(logits, rows[:, 1:], weights[:, 1:])
    loss.backward()
    return loss


def make_optimizer(model: torch.nn.Module, config: HostTrainConfig) -> torch.optim.AdamW:
    """AdamW that decays matrices (weights, embeddings) but not norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.optim.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.optim.lr, betas=(0.9, 0.95))


def _prepare_tokenizer(run: RunDir, config: HostTrainConfig, texts: list[str]):
    folder = run.path / TOKENIZER_DIR
    if (folder / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(folder, local_files_only=True)
    rng = np.random.default_rng([config.seed, 1])
    examples = sample_task_examples(config.data, rng, config.tokenizer.task_lines)
    lines = [task_line(e) for e in examples]
    tokenizer = train_tokenizer([*texts, *lines], config.tokenizer.vocab_size)
    tokenizer.save_pretrained(folder)
    return tokenizer


def checkpoint_tensors(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """A model's weights and its optimizer's state as one flat tensor dict (for RunDir)."""
    tensors = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().clone()
    return tensors


def restore_tensors(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, tensors: dict
) -> None:
    """Load what `checkpoint_tensors` returned back into the model and its optimizer."""
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict(
        {"state": state, "param_groups": optimizer.state_dict()["param_groups"]}
    )


def _training_attention(model, batches: MixtureBatches, config: HostTrainConfig, precision,
                        recorded: dict) -> Attention:
    """The attention kernel the run trains with: the one a resumed run `recorded` in its
    checkpoint state, else `optim.attention` (auto: probed on the first batch's first rows)."""
    if "attention" in recorded:
        set_attention(model, recorded["attention"])
        return Attention(recorded["attention"], recorded["attention_requested"],
                         recorded["attention_reason"])
    rows, weights = batches.batch(0, min(PROBE_ROWS, config.optim.batch_size))
    return resolve_attention(config.optim.attention, model, rows,
                             lambda r: forward_backward(model, r, weights[: len(r)], precision))


def train_host(
    config: HostTrainConfig | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    console: Console | None = None,
    texts: list[str] | None = None,
) -> Path:
    """Train (or resume) a host run; return the folder of its exported Hugging Face checkpoint.

    `texts` is the English text mixed with the tasks (default: the Shakespeare plays).
    """
    console = console or Console()
    if resume is not None:
        run = RunDir.open(resume)
        config = run.config(HostTrainConfig)
    else:
        run = RunDir.create(out or "runs", config, seed=config.seed, name="host")
    console.print(f"host run folder: {run.path}")
    torch.manual_seed(config.seed)
    texts = shakespeare_texts() if texts is None else texts
    tokenizer = _prepare_tokenizer(run, config, texts)
    model = build_model(config.model, tokenizer)
    optimizer = make_optimizer(model, config)
    step, tokens_seen, elapsed, recorded = 0, 0, 0.0, {}
    if run.latest_checkpoint() is not None:
        checkpoint = run.load_checkpoint()
        recorded = checkpoint.state
        restore_tensors(model, optimizer, checkpoint.tensors)
        step, tokens_seen = checkpoint.state["step"], checkpoint.state["tokens_seen"]
        elapsed = checkpoint.state["wall_seconds"]
        console.print(f"resumed at step {step}")
    batches = MixtureBatches(config.data, tokenizer, texts, config.seed)
    model.train()
    optim = config.optim
    device = next(model.parameters()).device
    precision = resolve_precision(optim.precision, device)
    console.print(f"precision: {precision.name} ({precision.reason})")
    attention = _training_attention(model, batches, config, precision, recorded)
    console.print(f"attention: {attention.name} ({attention.reason})")
    with Progress(total=optim.steps, description="host train") as progress:
        progress.advance(step)
        while step < optim.steps:
            started = time.perf_counter()
            rows, weights = batches.batch(step, optim.batch_size)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            loss = forward_backward(model, rows, weights, precision)
            torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens = rows[:, :-1].numel()
            tokens_seen += tokens
            seconds = time.perf_counter() - started
            elapsed += seconds
            record = {
                "step": step,
                "loss": round(loss.item(), 5),
                "lr": learning_rate(config, step - 1),
                "tokens_seen": tokens_seen,
                "tokens_per_s": round(tokens / seconds, 1),
                "wall_seconds": round(elapsed, 2),
            }
            run.stream("metrics").append(record)
            progress.advance(summary={"loss": record["loss"], "tok/s": int(tokens / seconds)})
            if step % optim.checkpoint_every == 0 or step == optim.steps:
                state = {"step": step, "tokens_seen": tokens_seen, "wall_seconds": elapsed,
                         **attention.record()}
                run.save_checkpoint(step, checkpoint_tensors(model, optimizer), state)
    export = run.path / EXPORT_DIR
    set_attention(model, "sdpa")  # the export loads with transformers' default kernel
    model.eval()
    with quiet_transformers():
        model.save_pretrained(export)
    tokenizer.save_pretrained(export)
    summary = {"step": step, "tokens_seen": tokens_seen, "wall_seconds": round(elapsed, 1),
               **precision.record(), **attention.record()}
    run.stream("summary").append(summary)
    run.close()
    console.print(
        f"trained {step} steps, {tokens_seen:,} tokens in {elapsed / 60:.1f} min; "
        f"host written to {export}"
    )
    return export
