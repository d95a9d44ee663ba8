"""The character Transformer against the LSTM language model, in one sitting.

Runs ``examples/char_lm.py`` (two LSTMs) and ``examples/transformer_lm.py`` one after the
other with the same ``--minutes`` of training on the same corpus and split, and records
each one's held-out bits per character (``val_bpc=``), its printed curve and its wall time.
Run it on an otherwise quiet machine: the two share nothing but the cores.

Usage:
    python benchmarks/bench_char_lms.py --minutes 8 --out benchmarks/results/char_lms.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")


def run(script: str, minutes: float) -> dict:
    """One example's run: its val_bpc, output lines and wall time."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, script), "--minutes", str(minutes)],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = proc.stdout.strip().splitlines()
    found = re.search(r"val_bpc=([0-9.]+)", lines[-1])
    if found is None:
        raise RuntimeError(f"{script} did not end with val_bpc=: {lines[-1]!r}")
    return {
        "val_bpc": float(found.group(1)),
        "wall_s": time.perf_counter() - start,
        "output": lines,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = {name: run(name, args.minutes) for name in ("char_lm.py", "transformer_lm.py")}
    payload = {
        "benchmark": "char_lms",
        "minutes": args.minutes,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cpu_count": os.cpu_count(),
        **results,
        "transformer_minus_lstm_bpc": results["transformer_lm.py"]["val_bpc"]
        - results["char_lm.py"]["val_bpc"],
    }
    text = json.dumps(payload, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    for name, r in results.items():
        print(f"{name}: val_bpc={r['val_bpc']:.4f} in {r['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
