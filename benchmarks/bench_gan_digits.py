"""The GAN example over several seeds, each in a fresh process, with its wall time.

Usage: python benchmarks/bench_gan_digits.py [--seeds 0,1,2,3,4] [--model dcgan]
       [--conditional] [--out benchmarks/out/gan_digits.json]

Runs ``examples/gan_digits.py --seed S`` once per seed, one after another (so each has
the machine to itself), reads each run's ``results.json`` and writes, per figure
(inception score, confident share, minimal class share, Fréchet distance and its real
floor, the conditional accuracy, the wall time), every seed's value and the min, median
and max. The wall time counts the whole command: start-up, training, the judge's
training and the scoring.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "gan_digits.py")
FIGURES = (
    "inception_score",
    "confident_share",
    "min_class_share",
    "frechet",
    "frechet_real",
    "conditional_accuracy",
)


def run_seed(seed: int, model: str, conditional: bool, extra: list[str], out: str) -> dict:
    """One run of the example; its results.json plus the command's wall time."""
    command = [sys.executable, EXAMPLE, "--model", model, "--seed", str(seed), "--out", out]
    command += ["--no-progress", *(["--conditional"] if conditional else []), *extra]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed} failed:\n{proc.stderr[-3000:]}")
    with open(os.path.join(out, "results.json")) as f:
        report = json.load(f)
    report["command_wall_seconds"] = wall
    report["last_line"] = proc.stdout.strip().splitlines()[-1]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--model", choices=("dcgan", "mlp"), default="dcgan")
    parser.add_argument("--conditional", action="store_true")
    parser.add_argument("--out", default="benchmarks/out/gan_digits.json")
    parser.add_argument("extra", nargs="*", help="more options for the example, after --")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            report = run_seed(
                seed, args.model, args.conditional, args.extra, os.path.join(tmp, str(seed))
            )
            runs[seed] = report
            print(f"seed {seed} ({report['command_wall_seconds']:.0f} s): {report['last_line']}")
    summary = {}
    for name in (*FIGURES, "command_wall_seconds"):
        values = [r["scores"][name] if name in r["scores"] else r.get(name) for r in runs.values()]
        if any(v is None for v in values):
            continue
        summary[name] = {
            "values": values,
            "min": min(values),
            "median": statistics.median(values),
            "max": max(values),
        }
    real = next(iter(runs.values()))["real_test_scores"]
    result = {
        "model": args.model,
        "conditional": args.conditional,
        "seeds": seeds,
        "summary": summary,
        "judge_test_accuracy": [r["judge_test_accuracy"] for r in runs.values()],
        "real_test_half": {k: real[k] for k in FIGURES if k in real},
        "runs": {str(s): {k: v for k, v in r.items() if k != "last_line"} for s, r in runs.items()},
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    for name, s in summary.items():
        print(f"{name}: min {s['min']:.4f}  median {s['median']:.4f}  max {s['max']:.4f}")


if __name__ == "__main__":
    main()
