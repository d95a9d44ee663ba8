"""Shared timing harness: interleaved rounds, medians, ratios, JSON output.

Every benchmark times its candidates round-robin (A, B, A, B, ...) so that machine noise
hits all of them alike, and reports medians and the ratio of medians to a baseline
measured in the same run.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Callable

import jax


def block(tree):
    """Wait until every array in ``tree`` is computed."""
    return jax.block_until_ready(tree)


def stepper(step: Callable, carry, batch) -> Callable[[], object]:
    """A zero-argument callable for :func:`time_interleaved` that advances a train step:
    each call runs ``carry, metrics = step(carry, batch)`` and returns the metrics (the
    carry is kept, so donated buffers are never reused)."""
    box = [carry]

    def run():
        box[0], metrics = step(box[0], batch)
        return metrics

    return run


def time_interleaved(
    candidates: dict[str, Callable[[], object]],
    *,
    rounds: int = 30,
    calls_per_round: int = 20,
    warmup: int = 3,
    rotate: bool = False,
) -> dict[str, dict[str, float]]:
    """Time each zero-argument callable; each round runs it ``calls_per_round`` times and
    blocks once at the end. Returns per-candidate median/min/max seconds per call, and
    the medians of the calling thread's CPU seconds and of the process's context switches
    per call (a dispatch-bound step is as fast as the Python thread that dispatches it,
    and each time XLA's worker thread has gone to sleep waking it costs microseconds).
    With ``rotate``, round ``r`` starts at candidate ``r mod n``, so each candidate follows
    each other one equally often (what runs just before a step can slow it: a child
    process's threads still spinning, a cold cache)."""
    for fn in candidates.values():
        for _ in range(warmup):
            block(fn())
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    thread_cpu: dict[str, list[float]] = {name: [] for name in candidates}
    switches: dict[str, list[float]] = {name: [] for name in candidates}
    order = list(candidates)
    for r in range(rounds):
        shift = r % len(order) if rotate else 0
        for name in order[shift:] + order[:shift]:
            fn = candidates[name]
            usage = _switches()
            cpu = time.thread_time()
            start = time.perf_counter()
            out = None
            for _ in range(calls_per_round):
                out = fn()
            block(out)
            samples[name].append((time.perf_counter() - start) / calls_per_round)
            thread_cpu[name].append((time.thread_time() - cpu) / calls_per_round)
            switches[name].append((_switches() - usage) / calls_per_round)
    return {
        name: {
            "median_s": statistics.median(s),
            "min_s": min(s),
            "max_s": max(s),
            "thread_cpu_median_s": statistics.median(thread_cpu[name]),
            "context_switches_per_call": statistics.median(switches[name]),
            "rounds": len(s),
            "calls_per_round": calls_per_round,
        }
        for name, s in samples.items()
    }


class StepProcess:
    """A step run in a child process over a pipe: the child prints one JSON line (its
    info), then answers each line it reads with a line once the step has finished.
    Calling the object runs one step; ``info`` is the child's first line."""

    def __init__(self, cmd: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the step process {cmd} exited before reporting")
        self.info = json.loads(line)

    def __call__(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        self.proc.stdout.readline()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _switches() -> int:
    """Voluntary and involuntary context switches of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw + usage.ru_nivcsw


def ratios(results: dict[str, dict[str, float]], baseline: str) -> dict[str, float]:
    """Median time of each candidate divided by the baseline's median."""
    base = results[baseline]["median_s"]
    return {name: r["median_s"] / base for name, r in results.items()}


def environment() -> dict[str, object]:
    """Where the numbers came from."""
    return {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def write_json(path: str, payload: dict) -> None:
    """Write ``payload`` as JSON atomically (temporary file, then rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    print(json.dumps(payload, indent=2, sort_keys=True))
