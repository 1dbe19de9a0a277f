"""Holdout accuracy of the shipped built-in host per family x difficulty (greedy, exact match),
over three independent draws of holdout examples (mean ± std across draws).

Run: python benchmarks/host_accuracy.py [--n 20] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse

from _common import mean_std, write_result

from evolora.hosts import load_host
from evolora.hosts.evaluate import evaluate, grid_examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="holdout examples per cell per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="example seeds")
    args = parser.parse_args()
    host = load_host("builtin")
    runs = []
    for seed in args.seeds:
        print(f"evaluating seed {seed}...", flush=True)
        runs.append(evaluate(host, grid_examples("default", args.n, seed)))
    cells = sorted({(c["family"], c["difficulty"]) for c in runs[0]["cells"]})
    acc = {
        cell: [next(c["accuracy"] for c in r["cells"] if (c["family"], c["difficulty"]) == cell)
               for r in runs]
        for cell in cells
    }  # fmt: skip
    families = sorted({f for f, _ in cells})
    difficulties = sorted({d for _, d in cells})
    lines = [
        f"Built-in host, greedy, exact match, {args.n} holdout examples per cell for each of seeds "
        f"{', '.join(map(str, args.seeds))}; mean ± std across seeds. Logic is true/false "
        "(0.5 = chance).",
        "",
        "| family | " + " | ".join(f"d{d}" for d in difficulties) + " |",
        "|---|" + "---:|" * len(difficulties),
    ]
    for family in families:
        values = [acc[(family, d)] for d in difficulties]
        lines.append(f"| {family} | " + " | ".join(mean_std(v, digits=2) for v in values) + " |")
    overall = [r["accuracy"] for r in runs]
    lines += ["", f"Overall accuracy {mean_std(overall)}."]
    table = "\n".join(lines)
    print(table)
    figures = {
        "n_per_cell": args.n,
        "seeds": args.seeds,
        "accuracy": {f"{f}/d{d}": acc[(f, d)] for f, d in cells},
        "overall": overall,
    }
    print(f"\nwritten to {write_result('host_accuracy', figures, table)}")


if __name__ == "__main__":
    main()
