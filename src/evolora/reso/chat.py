"""The interactive chat loop: `exit`, `goal <text>`, `status`, `metrics`, anything else a prompt."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

HELP = "commands: exit | goal <text> | status | metrics (toggle) | anything else is a prompt"


def status_lines(engine) -> list[str]:
    """What `status` shows: goals, foci, memory, bindings and the model's shape."""
    cfg = engine.model.config
    memory = engine.model.model.memory
    lines = [
        f"model: {cfg.num_hidden_layers} layers x {cfg.hidden_size}, "
        f"{sum(p.numel() for p in engine.model.parameters()):,} parameters",
        "goals: " + (", ".join(f"{g.description} ({g.progress:.0%})" for g in engine.goals)
                     or "none"),
        "foci: " + (", ".join(f"{f.target!r}:{f.intensity:.2f}"
                              for f in engine.get_attention_foci()) or "none"),
        f"memory moments: {len(memory.log) if memory is not None else 'disabled'}",
        f"concept bindings: {len(cfg.prsc_binding_names)}",
    ]
    return lines


def chat_loop(engine, console: Console, max_new_tokens: int, temperature: float,
              read: Callable[[], str] | None = None) -> None:
    """Run the chat until `exit` or end of input; each reply is written to the memory field."""
    from evolora.reso.commands import print_result

    read = read or (lambda: console.input("[bold]you> [/bold]"))
    show_metrics = True
    console.print(f"[dim]{HELP}[/dim]")
    turn = 0
    while True:
        try:
            line = read().strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not line:
            continue
        if line == "exit":
            break
        if line == "metrics":
            show_metrics = not show_metrics
            console.print(f"[dim]metrics {'on' if show_metrics else 'off'}[/dim]")
            continue
        if line == "status":
            for text in status_lines(engine):
                console.print(text, markup=False)
            continue
        if line.startswith("goal "):
            goal = engine.create_goal(line[5:].strip())
            console.print(f"[dim]goal set: {goal.description}[/dim]")
            continue
        result = engine.generate(line, max_new_tokens, temperature, seed=turn)
        print_result(console, result, show_metrics)
        if engine.model.model.memory is not None and result.text:
            engine.update_memory(line + result.text)
        turn += 1
