"""Difficulty is real: simple hand-written solvers' mean score per task family and difficulty.

Each heuristic reads only the prompt and guesses without solving the task (first or last number,
always "true", copy the input, extrapolate the last step, a regex JSON fix, ...). On held-out
examples the best trick should lose ground as difficulty rises, so no strategy can score well
by one. Scores are the families' own scores (with partial credit), averaged over 3 seeds.

    python benchmarks/task_heuristics.py [--n 400]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

from evolora.tasks import DIFFICULTIES, family_names, get_family, score

SEEDS = (0, 1, 2)
_NUMBER = re.compile(r"-?\d+")


def _numbers(prompt: str) -> list[str]:
    return _NUMBER.findall(_body(prompt))


def _body(prompt: str) -> str:
    """The prompt between the family tag and the final '='."""
    return prompt.split(":", 1)[1].rsplit("=", 1)[0].strip()


def first_number(prompt: str) -> str:
    found = _numbers(prompt)
    return found[0] if found else ""


def last_number(prompt: str) -> str:
    found = _numbers(prompt)
    return found[-1] if found else ""


def always_true(prompt: str) -> str:
    return "true"


def first_constant(prompt: str) -> str:
    """true if the first T/F constant is T (syllogisms: true)."""
    match = re.search(r"\b([TF])\b", _body(prompt))
    return "true" if match is None or match.group(1) == "T" else "false"


def copy_input(prompt: str) -> str:
    return _body(prompt)


def sort_as_text(prompt: str) -> str:
    """Sort the input tokens ascending as strings, ignoring the order asked and numeric value."""
    return " ".join(sorted(_body(prompt).split()))


def extrapolate(prompt: str) -> str:
    """Continue the last difference: 2*last - second last."""
    found = [int(n) for n in _numbers(prompt)]
    return str(2 * found[-1] - found[-2]) if len(found) >= 2 else ""


def regex_json_fix(prompt: str) -> str:
    """Swap quotes, lower Python literals and drop trailing commas; no parsing."""
    text = _body(prompt).replace("'", '"')
    for python, json_text in (("True", "true"), ("False", "false"), ("None", "null")):
        text = text.replace(python, json_text)
    return re.sub(r",\s*([}\]])", r"\1", text)


HEURISTICS: dict[str, Callable[[str], str]] = {
    "first number": first_number,
    "last number": last_number,
    "always true": always_true,
    "first constant": first_constant,
    "copy input": copy_input,
    "sort ascending as text": sort_as_text,
    "extrapolate": extrapolate,
    "regex json fix": regex_json_fix,
}


def measure(n: int) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """figures[family][heuristic][difficulty] = mean/std of mean score and exact accuracy."""
    figures: dict = {}
    for family_name in family_names():
        family = get_family(family_name)
        per_heuristic: dict = {h: {} for h in HEURISTICS}
        for difficulty in DIFFICULTIES:
            scores = {h: [] for h in HEURISTICS}  # per seed: (mean score, exact accuracy)
            for seed in SEEDS:
                rng = np.random.default_rng([seed, difficulty])
                examples = [family.sample(rng, difficulty, "holdout") for _ in range(n)]
                for h, solve in HEURISTICS.items():
                    values = np.array([score(e, solve(e.prompt)) for e in examples])
                    scores[h].append((values.mean(), (values == 1.0).mean()))
            for h, runs in scores.items():
                runs_arr = np.array(runs)
                per_heuristic[h][difficulty] = {
                    "mean_score": float(runs_arr[:, 0].mean()),
                    "mean_score_std": float(runs_arr[:, 0].std()),
                    "accuracy": float(runs_arr[:, 1].mean()),
                }
        figures[family_name] = per_heuristic
    return figures


def table(figures: dict) -> str:
    """Markdown: one row per family and heuristic that scores anything; columns d1..d5."""
    header = "| family | heuristic | " + " | ".join(f"d{d}" for d in DIFFICULTIES) + " |"
    lines = [header, "|---|---|" + "---:|" * len(DIFFICULTIES)]
    for family_name, per_heuristic in figures.items():
        rows: dict[str, list[float]] = {}
        for h in HEURISTICS:
            values = [per_heuristic[h][d]["mean_score"] for d in DIFFICULTIES]
            twin = next((name for name, v in rows.items() if v == values), None)
            if twin is not None:  # same answers on this family (e.g. copy input = regex fix)
                rows[f"{twin} / {h}"] = rows.pop(twin)
            elif max(values) >= 0.005:
                rows[h] = values
        best = [max([0.0, *(r[i] for r in rows.values())]) for i in range(len(DIFFICULTIES))]
        for h, values in rows.items():
            lines.append(
                f"| {family_name} | {h} | " + " | ".join(f"{v:.2f}" for v in values) + " |"
            )
        lines.append(
            f"| {family_name} | **best trick** | " + " | ".join(f"**{v:.2f}**" for v in best) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=400, help="Holdout examples per cell and seed.")
    args = parser.parse_args()
    figures = measure(args.n)
    text = (
        f"Mean score (the family's own scorer, partial credit included) of prompt-only "
        f"heuristics on {args.n} holdout examples per cell, averaged over seeds "
        f"{', '.join(map(str, SEEDS))}; rows that never score are left out, heuristics that "
        f"give the same answers share a row. Logic answers are true/false, so 0.5 is chance "
        f"there.\n\n" + table(figures)
    )
    print(text)
    path = write_result(
        "task_heuristics", {"n_per_cell_and_seed": args.n, "seeds": SEEDS, "scores": figures}, text
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
