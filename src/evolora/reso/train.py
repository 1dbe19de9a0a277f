"""Training a Reso model (or, for comparison, a plain Llama of the same shape) on evolora's mixture.

The mixture is the hosts' (`evolora.hosts.corpus.MixtureBatches`): task TRAIN-split lines and
Shakespeare windows, tokenised by the built-in host's tokenizer (the prime map sits on top of its
ids, primes.py). Every 8th play is held out for validation loss. Every extension is active in the
training forward; the ponder loss of coherence gating is added to the cross-entropy, and the
extensions' readings are logged each step. A run lives in a telemetry `RunDir` with checkpoints of
model and AdamW state; `--resume` continues exactly (batches and noise depend only on seed, step).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from evolora.errors import EvoloraError
from evolora.hosts.corpus import MixtureBatches, shakespeare_texts
from evolora.hosts.loading import BUILTIN_DIR, quiet_transformers
from evolora.hosts.train import (
    checkpoint_tensors,
    learning_rate,
    make_optimizer,
    restore_tensors,
    weighted_loss,
)
from evolora.hosts.train_config import ModelShape
from evolora.reso.config import ResoConfig, preset_config
from evolora.reso.model import ResoForCausalLM
from evolora.reso.stability import lyapunov
from evolora.reso.train_config import ResoModelSpec, ResoTrainConfig
from evolora.telemetry import Progress, RunDir

EXPORT_DIR = "model"
HOLDOUT_EVERY = 8


def builtin_tokenizer() -> PreTrainedTokenizerBase:
    """The built-in host's byte-level BPE tokenizer."""
    return AutoTokenizer.from_pretrained(BUILTIN_DIR, local_files_only=True)


def split_plays(texts: list[str]) -> tuple[list[str], list[str]]:
    """(training texts, held-out texts): every 8th play is held out."""
    held = [t for i, t in enumerate(texts) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
    return [t for i, t in enumerate(texts) if i % HOLDOUT_EVERY != HOLDOUT_EVERY - 1], held


def load_extra_text(path: str) -> list[str]:
    """The 'text' column of a local HF dataset folder (save_to_disk) or a JSONL file."""
    source = Path(path).expanduser()
    if source.is_file():
        try:
            rows = [json.loads(line) for line in source.read_text("utf-8").splitlines() if line]
        except json.JSONDecodeError:
            raise EvoloraError(f"extra_text {source} is not JSON Lines.") from None
    elif source.is_dir():
        from datasets import load_from_disk

        dataset = load_from_disk(str(source))
        rows = list(dataset["train"] if "train" in getattr(dataset, "keys", list)() else dataset)
    else:
        raise EvoloraError(f"extra_text {source} is neither a JSONL file nor a dataset folder.")
    texts = [r.get("text") for r in rows if isinstance(r, dict)]
    if not texts or not all(isinstance(t, str) for t in texts):
        raise EvoloraError(
            f"extra_text {source} needs a string 'text' field in every row (the guanaco schema)."
        )
    return ["\n".join(texts)]


def reso_config(spec: ResoModelSpec, tokenizer: PreTrainedTokenizerBase) -> ResoConfig:
    """The model config of `spec` over `tokenizer` (episodes start at <bos> and newlines)."""
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    return preset_config(
        spec.preset, ablate=spec.ablate, overrides=spec.sections,
        vocab_size=len(tokenizer), max_position_embeddings=spec.max_positions,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        episode_boundary_ids=[tokenizer.bos_token_id, *newline],
    )


def plain_model(config: ResoConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """A plain transformer of the same shape: the built-in host's Llama architecture."""
    from evolora.hosts.train import build_model

    shape = ModelShape(hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
                       num_layers=config.num_hidden_layers, num_heads=config.num_attention_heads,
                       max_positions=config.max_position_embeddings)
    return build_model(shape, tokenizer)


def validation_rows(tokenizer: PreTrainedTokenizerBase, texts: list[str], n: int, seq_len: int,
                    seed: int = 1234) -> torch.Tensor:
    """`n` fixed held-out rows (n, seq_len + 1): <bos> + a window of the held-out plays."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    stream = np.concatenate([np.asarray(t, dtype=np.int64) for t in ids])
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(stream) - seq_len, size=n)
    rows = [np.concatenate([[tokenizer.bos_token_id], stream[s : s + seq_len]]) for s in starts]
    return torch.from_numpy(np.stack(rows))


@torch.no_grad()
def validation_loss(model: PreTrainedModel, rows: torch.Tensor, batch: int = 16) -> float:
    """Mean next-token cross-entropy (nats) of the rows, in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch].to(model.device)
        logits = model(input_ids=chunk[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(
            logits.float().flatten(0, 1), chunk[:, 1:].flatten(), reduction="sum")
        total, count = total + float(loss), count + chunk[:, 1:].numel()
    model.train(was_training)
    return total / count


def _mean(values: torch.Tensor) -> float:
    return float(values.detach().float().mean())


def extension_metrics(model: PreTrainedModel, out) -> dict[str, float]:
    """The extensions' readings of one forward (empty for a plain model)."""
    if not isinstance(model, ResoForCausalLM):
        return {}
    metrics: dict[str, float] = {}
    if out.order is not None:
        metrics["kuramoto/order"] = _mean(out.order)
        metrics["kuramoto/coupling"] = _mean(model.model.kuramoto.coupling)
    if out.coherence is not None:
        metrics["prsc/coherence"] = _mean(out.coherence)
    if out.salience is not None:
        metrics["agency/salience"] = _mean(out.salience)
    if out.aux_loss is not None:
        skipped, total = model.last_skip
        metrics["gating/skipped"] = skipped / max(1, total)
        metrics["gating/ponder_loss"] = _mean(out.aux_loss)
    if out.final_hidden is not None:
        metrics["stability/lyapunov"] = lyapunov(out.final_hidden[0, -32:].detach())[0]
    return metrics


def train_step(model: PreTrainedModel, optimizer: torch.optim.Optimizer, rows: torch.Tensor,
               weights: torch.Tensor, config: ResoTrainConfig, step: int) -> dict[str, float]:
    """One AdamW step on a batch; returns its loss and the extensions' readings."""
    torch.manual_seed(config.seed * 1_000_003 + step)  # the stochastic-resonance noise
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(config, step)
    rows, weights = rows.to(model.device), weights.to(model.device)
    out = model(input_ids=rows[:, :-1])
    loss = weighted_loss(out.logits, rows[:, 1:], weights[:, 1:])
    total = loss + out.aux_loss if getattr(out, "aux_loss", None) is not None else loss
    total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {"loss": float(loss.detach()), **extension_metrics(model, out)}


def training_texts(config: ResoTrainConfig) -> tuple[list[str], list[str]]:
    """(training texts, held-out plays)."""
    train, held = split_plays(shakespeare_texts())
    if config.max_plays is not None:
        train, held = train[: config.max_plays], held[: config.max_plays]
    if config.extra_text:
        train = [*train, *load_extra_text(config.extra_text)]
    return train, held


def train_reso(config: ResoTrainConfig | None = None, out: str | Path | None = None,
               resume: str | Path | None = None, console: Console | None = None,
               device: str | None = None) -> Path:
    """Train (or resume) a Reso run; return the folder of its exported model (a host folder)."""
    from evolora.hosts.loading import pick_device

    console = console or Console()
    if resume is not None:
        run = RunDir.open(resume)
        config = run.config(ResoTrainConfig)
    else:
        config = config or ResoTrainConfig()
        run = RunDir.create(out or "runs", config, seed=config.seed, name="reso")
    console.print(f"reso run folder: {run.path}")
    torch.manual_seed(config.seed)
    tokenizer = builtin_tokenizer()
    model = ResoForCausalLM(reso_config(config.model, tokenizer)).to(pick_device(device))
    optimizer = make_optimizer(model, config)
    step = 0
    if run.latest_checkpoint() is not None:
        checkpoint = run.load_checkpoint()
        restore_tensors(model, optimizer, checkpoint.tensors)
        step = checkpoint.state["step"]
        console.print(f"resumed at step {step}")
    train_texts, held = training_texts(config)
    batches = MixtureBatches(config.data, tokenizer, train_texts, config.seed)
    val = validation_rows(tokenizer, held, config.eval_rows, config.data.seq_len)
    model.train()
    steps = config.optim.steps
    with Progress(total=steps, description="reso train") as progress:
        progress.advance(step)
        while step < steps:
            started = time.perf_counter()
            rows, weights = batches.batch(step, config.optim.batch_size)
            record = train_step(model, optimizer, rows, weights, config, step)
            step += 1
            seconds = time.perf_counter() - started
            record = {"step": step, **{k: round(v, 5) for k, v in record.items()},
                      "tokens_per_s": round(rows[:, :-1].numel() / seconds, 1)}
            run.stream("metrics").append(record)
            summary = {"loss": record["loss"], "tok/s": int(record["tokens_per_s"])}
            if step % config.eval_every == 0 or step == steps:
                val_loss = validation_loss(model, val)
                run.stream("evaluations").append({"step": step, "val_loss": round(val_loss, 5)})
                summary["val"] = round(val_loss, 3)
            progress.advance(summary=summary)
            if step % config.optim.checkpoint_every == 0 or step == steps:
                run.save_checkpoint(step, checkpoint_tensors(model, optimizer), {"step": step})
    export = run.path / EXPORT_DIR
    model.eval()
    with quiet_transformers():
        model.save_pretrained(export)
    tokenizer.save_pretrained(export)
    run.close()
    console.print(f"trained {step} steps; model written to {export}")
    return export


def train_for(model: PreTrainedModel, config: ResoTrainConfig, batches: MixtureBatches,
              seconds: float | None = None, steps: int | None = None) -> dict[str, float]:
    """Train for a compute budget (or a number of steps) from step 0; returns steps, tokens,
    seconds, tokens/s and the mean of the last 10 steps' readings (benchmarks use this).

    Seconds are this process's CPU seconds (`time.process_time`), on GPU, wall-clock ones: on a
    shared CPU the wall clock counts other people's work, the process clock only ours."""
    if (seconds is None) == (steps is None):
        raise EvoloraError("train_for needs exactly one of seconds or steps.")
    optimizer = make_optimizer(model, config)
    model.train()
    clock = time.process_time if model.device.type == "cpu" else time.perf_counter
    step, tokens, spent, recent = 0, 0, 0.0, []
    while (steps is not None and step < steps) or (seconds is not None and spent < seconds):
        rows, weights = batches.batch(step, config.optim.batch_size)
        started = clock()
        recent = [*recent, train_step(model, optimizer, rows, weights, config, step)][-10:]
        spent += clock() - started
        step, tokens = step + 1, tokens + rows[:, :-1].numel()
    means = {k: float(np.mean([r[k] for r in recent])) for k in recent[-1]} if recent else {}
    model.eval()
    return {"steps": step, "tokens": tokens, "seconds": spent, "tokens_per_s": tokens / spent,
            **means}
