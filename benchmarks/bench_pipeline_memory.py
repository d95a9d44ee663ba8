"""One epoch over a packed data set several times larger than the memory it runs in.

Writes ``--gigabytes`` of records (random uint8 images of ``--size`` pixels a side, RGB,
with labels) to an ArrayRecord file, then, in a fresh child process, trains a small
convolutional net for one epoch read through ``jn.data.Pipeline`` and reports the child's
peak resident memory (``ru_maxrss``) beside the size of the data. With ``--limit-gb`` and
a writable cgroup-v1 memory controller (``/sys/fs/cgroup/memory``, as root in a
container), the child runs in a cgroup held to that much memory, page cache included
(the kernel evicts the file's pages as it goes); the cgroup's own peak and failure count
are reported. Without one, the measured peak is the figure.

Usage:
    python benchmarks/bench_pipeline_memory.py --gigabytes 6 --out benchmarks/results/x.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

CHILD = r"""
import json, resource, sys, time
import numpy as np, optax, jaxnets as jn
path, batch = sys.argv[1], int(sys.argv[2])
records = jn.data.RecordFile(path)
pipeline = jn.data.Pipeline(records, batch, seed=0)
model = jn.serial(
    jn.Conv(8, (5, 5), strides=(4, 4)), jn.Relu(), jn.GlobalAvgPool(), jn.Dense(10)
)
start = time.perf_counter()
result = jn.fit(model, pipeline, optimizer=optax.adam(1e-3), epochs=1, progress=False)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak_rss_bytes": peak, "epoch_s": seconds, "steps": len(pipeline),
                  "loss": result.history["loss"][-1]}))
"""


def make_cgroup(limit_gb: float) -> str | None:
    """A cgroup-v1 memory group held to ``limit_gb`` (None where none can be made)."""
    group = f"/sys/fs/cgroup/memory/jaxnets_bench_{os.getpid()}"
    try:
        os.mkdir(group)
        with open(f"{group}/memory.limit_in_bytes", "w") as f:
            f.write(str(int(limit_gb * 2**30)))
    except OSError as e:
        print(f"no memory cgroup ({e}); reporting the measured peak only", file=sys.stderr)
        return None
    return group


def join_cgroup(group: str) -> None:
    with open(f"{group}/cgroup.procs", "w") as f:
        f.write(str(os.getpid()))


def read_cgroup(group: str, limit_gb: float) -> dict:
    def number(name: str) -> int:
        with open(f"{group}/{name}") as f:
            return int(f.read())

    return {
        "limit_bytes": int(limit_gb * 2**30),
        "max_usage_bytes": number("memory.max_usage_in_bytes"),
        "failcnt": number("memory.failcnt"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=6.0)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit-gb", type=float, default=None)
    parser.add_argument("--dir", default=None, help="where to write the records (default: tmp)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import jaxnets as jn

    example = args.size * args.size * 3
    n = int(args.gigabytes * 1e9 // example)
    folder = tempfile.mkdtemp(prefix="bench_memory_", dir=args.dir)
    path = os.path.join(folder, "big.array_record")
    rng = np.random.default_rng(0)
    block = rng.integers(0, 256, size=(256, args.size, args.size, 3), dtype=np.uint8)
    start = time.perf_counter()
    jn.data.write_records(path, ((block[i % 256], i % 10) for i in range(n)))
    write_s = time.perf_counter() - start
    size = os.path.getsize(path)
    group = make_cgroup(args.limit_gb) if args.limit_gb else None
    try:
        child = subprocess.run(
            [sys.executable, "-c", CHILD, path, str(args.batch_size)],
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=None if group is None else lambda: join_cgroup(group),
        )
        held = None if group is None else read_cgroup(group, args.limit_gb)
    finally:
        if group is not None:
            os.rmdir(group)
        os.remove(path)
        os.remove(f"{path}.json")
        os.rmdir(folder)
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    payload = {
        "benchmark": "pipeline_memory",
        "examples": n,
        "example_shape": [args.size, args.size, 3],
        "file_bytes": size,
        "write_s": write_s,
        **measured,
        "file_over_peak_rss": size / measured["peak_rss_bytes"],
        "cgroup": held,
        "this_process_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "load_average": os.getloadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    text = json.dumps(payload, indent=2, sort_keys=True)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
