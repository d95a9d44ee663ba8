"""CPU train-step time: jaxnets vs hand-written raw JAX vs PyTorch eager, three workloads.

Usage: python benchmarks/bench_cpu_vs_torch.py [--out benchmarks/out/cpu_vs_torch.json]
       [--rounds 15] [--workloads lenet,resnet20,lstm] [--threads 2] [--hugepages]
       [--torch-tunables] [--before TREE [--spawns 4]]

PyTorch is an optional, benchmark-only dependency (``pip install jaxnets[bench]``, i.e.
``torch==2.13.0``; install the CPU build, e.g. from a local wheel with
``.venv/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl``,
since a plain ``pip install torch`` fetches the multi-GB CUDA build). Without it the torch
column is skipped with a message.

Workloads (adam 1e-3, float32, one fixed batch, the same parameter count in every column,
asserted):

* ``lenet``: 28x28x1, batch 128: conv 5x5x32 (SAME, ReLU), 2x2 max pool, conv 5x5x64,
  pool, dense 256 (ReLU), dense 10; softmax cross-entropy.
* ``resnet20``: 32x32x3, batch 64: CIFAR ResNet-20 with BatchNorm (batch statistics,
  running averages updated) and option-A shortcuts.
* ``lstm``: token ids (32, 64), vocabulary 65 -> embedding 64 -> LSTM 256 -> dense 65.

Columns: ``jaxnets`` (``jn.make_train_step``), ``raw_jax`` (the hand-written steps of
``bench_cnn.py`` and ``bench_lstm.py``), ``torch`` (eager, ``torch.set_num_threads``). Each
column first trains a few steps on the batch and the loss must fall; then the columns are
timed round-robin (``harness.time_interleaved``) and the JSON gives medians and the
ratios jaxnets/torch, jaxnets/raw_jax and raw_jax/torch, plus the machine's load average.

``--hugepages`` restarts the benchmark with ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``
(:func:`jaxnets.process.reexec_with_hugepages`) for the JAX columns; PyTorch runs without
glibc tunables unless ``--torch-tunables`` is given.

``--before TREE`` times this tree's jaxnets against the jaxnets of another source tree (a
git worktree of an older commit) and PyTorch, each in a child process, round-robin in
rotating order; the children are started afresh ``--spawns`` times (alternating which tree
starts first), since one process's speed differs from the next start's by a few percent.
The JSON gives each spawn's medians and the medians over spawns of
``ratio_jaxnets_over_jaxnets_before`` and of each tree's ratio to PyTorch. ``--before`` with
this tree itself measures that spread.

PyTorch runs in a child process driven over a pipe (one step per request, timed from the
parent like the JAX columns), so its OpenMP pool and XLA's thread pool never share a
process. Measure on a quiet machine: PyTorch eager with 2 threads slows down sharply when
the cores are shared (its LSTM step took 0.3-3.5 s instead of 26 ms at load 4-7).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(__file__))
import bench_cnn
import bench_lstm
import harness

import jaxnets as jn
from jaxnets import process

try:
    import torch
    from torch import nn
except ImportError:  # the torch column is optional
    torch = None

LR = 1e-3
WARM_STEPS = 8  # steps whose loss must fall before timing


# --------------------------------------------------------------------------- PyTorch models

if torch is not None:

    class TorchLeNet(nn.Module):
        def __init__(self, classes: int = 10):
            super().__init__()
            self.c1 = nn.Conv2d(1, 32, 5, padding=2)
            self.c2 = nn.Conv2d(32, 64, 5, padding=2)
            self.d1 = nn.Linear(7 * 7 * 64, 256)
            self.d2 = nn.Linear(256, classes)

        def forward(self, x):
            x = nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
            x = nn.functional.max_pool2d(torch.relu(self.c2(x)), 2)
            return self.d2(torch.relu(self.d1(x.flatten(1))))

    class TorchBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
            self.stride, self.extra = stride, cout - cin

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            if self.stride != 1 or self.extra:  # option A: subsample, zero channels
                x = nn.functional.pad(
                    x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.extra)
                )
            return torch.relu(y + x)

    class TorchResNet20(nn.Module):
        def __init__(self, classes: int = 10):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16))
            blocks, cin = [], 16
            for stage, width in enumerate((16, 32, 64)):
                for b in range(3):
                    blocks.append(TorchBlock(cin, width, 2 if b == 0 and stage > 0 else 1))
                    cin = width
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(64, classes)

        def forward(self, x):
            x = self.blocks(torch.relu(self.stem(x)))
            return self.fc(x.mean(dim=(2, 3)))

    class TorchLSTMLM(nn.Module):
        """nn.LSTM keeps two bias vectors; the hidden-side one is frozen at zero so the
        trainable parameters are those of the one-bias JAX LSTM."""

        def __init__(self):
            super().__init__()
            v, e, h = bench_lstm.VOCAB, bench_lstm.EMBED, bench_lstm.HIDDEN
            self.embed = nn.Embedding(v, e)
            self.lstm = nn.LSTM(e, h, batch_first=True)
            with torch.no_grad():
                self.lstm.bias_hh_l0.zero_()
            self.lstm.bias_hh_l0.requires_grad_(False)
            self.out = nn.Linear(h, v)

        def forward(self, ids):
            y, _ = self.lstm(self.embed(ids))
            return self.out(y).flatten(0, 1)


def torch_column(workload: str, x: np.ndarray, y: np.ndarray):
    """``(trainable parameter count, step() -> loss)`` for the PyTorch model."""
    torch.manual_seed(0)
    if workload == "lstm":
        model = TorchLSTMLM()
        xt, yt = torch.from_numpy(x).long(), torch.from_numpy(y).long().flatten()
    else:
        model = TorchLeNet() if workload == "lenet" else TorchResNet20()
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        yt = torch.from_numpy(y).long()
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=LR)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        return loss.detach()

    return sum(p.numel() for p in trainable), step


def torch_worker(workload: str, threads: int) -> None:
    """The child process: print the parameter count and the warm-up losses as one JSON
    line, then run one step per line read from stdin and answer each with a line."""
    torch.set_num_threads(threads)
    count, step = torch_column(workload, *_batch(workload))
    trace = [float(step()) for _ in range(WARM_STEPS)]
    print(json.dumps({"params": count, "losses": trace, "threads": torch.get_num_threads()}))
    sys.stdout.flush()
    for _ in sys.stdin:
        step()
        sys.stdout.write("\n")
        sys.stdout.flush()


def _worker_command(kind: str, workload: str, threads: int) -> list[str]:
    cmd = [sys.executable, os.path.abspath(__file__), f"--{kind}-worker", workload]
    return [*cmd, "--threads", str(threads)]


# --------------------------------------------------------------------------- JAX columns


def _batch(workload: str):
    rng = np.random.default_rng(0)
    if workload == "lstm":
        ids = rng.integers(0, bench_lstm.VOCAB, (bench_lstm.BATCH, bench_lstm.SEQ + 1))
        ids = ids.astype(np.int32)
        return ids[:, :-1].copy(), ids[:, 1:].copy()
    batch, shape = {"lenet": (128, (28, 28, 1)), "resnet20": (64, (32, 32, 3))}[workload]
    return rng.normal(size=(batch, *shape)).astype(np.float32), rng.integers(0, 10, batch).astype(
        np.int32
    )


def jax_columns(workload: str, x, y):
    """``{name: (param count, step() -> loss)}`` for jaxnets and raw JAX."""
    optimizer = optax.adam(LR)
    xb, yb = jax.device_put(x), jax.device_put(y)
    if workload == "lstm":
        model = jn.serial(
            ("embed", jn.Embedding(bench_lstm.VOCAB, bench_lstm.EMBED)),
            ("lstm", jn.RNN(jn.LSTM(bench_lstm.HIDDEN))),
            ("logits", jn.Dense(bench_lstm.VOCAB)),
        )
        raw_params, raw_step = bench_lstm.raw_jax(optimizer, jnp.float32)
        raw_carry = (raw_params, optimizer.init(raw_params))
        metrics = {}
    else:
        make_jn, make_raw = {
            "lenet": (bench_cnn.lenet_jaxnets, bench_cnn.lenet_raw),
            "resnet20": (jn.models.resnet20, bench_cnn.resnet20_raw),
        }[workload]
        model = make_jn(10)
        raw_params, raw_state, forward = make_raw(jax.random.key(0), x.shape[1:], 10)
        raw_step = bench_cnn.raw_train_step(forward, optimizer)
        raw_carry = (raw_params, raw_state, optimizer.init(raw_params))
        metrics = None
    spec = jax.ShapeDtypeStruct(x.shape, xb.dtype)
    ts = jn.create_train_state(model, optimizer, spec)
    jn_step = jn.make_train_step(model, "softmax_cross_entropy", optimizer, metrics=metrics)
    box = {"jaxnets": ts, "raw_jax": raw_carry}

    def run_jn():
        box["jaxnets"], m = jn_step(box["jaxnets"], (xb, yb))
        return m["loss"]

    def run_raw():
        box["raw_jax"], m = raw_step(box["raw_jax"], (xb, yb))
        return m["loss"]

    return {
        "jaxnets": (jn.count_params(ts.params), run_jn),
        "raw_jax": (jn.count_params(raw_params), run_raw),
    }


def jaxnets_worker(workload: str) -> None:
    """The child process of a ``--before`` run: the jaxnets column of the tree on
    ``PYTHONPATH``, driven like :func:`torch_worker` (each step blocks before answering)."""
    count, run = jax_columns(workload, *_batch(workload))["jaxnets"]
    trace = [float(run()) for _ in range(WARM_STEPS)]
    print(json.dumps({"params": count, "losses": trace, "jaxnets_file": jn.__file__}))
    sys.stdout.flush()
    for _ in sys.stdin:
        jax.block_until_ready(run())
        sys.stdout.write("\n")
        sys.stdout.flush()


def tree_env(tree: str) -> dict[str, str]:
    """This environment with ``tree`` first on ``PYTHONPATH`` (its ``jaxnets`` wins)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (tree, env.get("PYTHONPATH")) if p)
    return env


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def torch_env(inherit_tunables: bool) -> dict[str, str]:
    """PyTorch's environment: this one, without glibc tunables unless asked to keep them
    (PyTorch is measured as people run it)."""
    env = dict(os.environ)
    if not inherit_tunables:
        env.pop("GLIBC_TUNABLES", None)
    return env


def _check_columns(counts: dict[str, int], traces: dict[str, list[float]], workload: str):
    """Every column trains the same number of parameters and its loss falls."""
    assert len(set(counts.values())) == 1, counts
    for name, trace in traces.items():
        assert trace[-1] < trace[0], (workload, name, trace)


def bench_workload(workload: str, rounds: int, calls: int, threads: int, env) -> dict:
    """Time the columns of one workload round-robin: jaxnets and raw JAX in this process,
    PyTorch in a child."""
    x, y = _batch(workload)
    columns = jax_columns(workload, x, y)
    traces = {name: [float(fn()) for _ in range(WARM_STEPS)] for name, (_, fn) in columns.items()}
    counts = {name: n for name, (n, _) in columns.items()}
    steps = {name: fn for name, (_, fn) in columns.items()}
    worker = None
    if torch is not None:
        worker = harness.StepProcess(_worker_command("torch", workload, threads), env)
        counts["torch"], traces["torch"] = worker.info["params"], worker.info["losses"]
        steps["torch"] = worker
    _check_columns(counts, traces, workload)
    load_before = _load()
    try:
        results = harness.time_interleaved(steps, rounds=rounds, calls_per_round=calls, warmup=1)
    finally:
        if worker is not None:
            worker.close()
    out = {
        "params": counts["jaxnets"],
        "loss_first_last": {name: {"first": t[0], "last": t[-1]} for name, t in traces.items()},
        "load_avg_before": load_before,
        "load_avg_after": _load(),
        "results": results,
        "ratio_jaxnets_over_raw_jax": harness.ratios(results, "raw_jax")["jaxnets"],
    }
    if "torch" in results:
        r = harness.ratios(results, "torch")
        out["ratio_jaxnets_over_torch"] = r["jaxnets"]
        out["ratio_raw_jax_over_torch"] = r["raw_jax"]
    return out


def bench_before_after(
    workload: str, rounds: int, calls: int, threads: int, env, before: str, spawns: int
) -> dict:
    """This tree's jaxnets against ``before``'s, each in child processes started afresh
    ``spawns`` times (in alternating order; a process's own speed varies by a few percent
    from one start to the next), with PyTorch, all timed round-robin in rotating order.
    Ratios are medians over the spawns of each spawn's ratio of medians."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = [("jaxnets", here), ("jaxnets_before", before)]
    per_spawn = []
    for spawn in range(spawns):
        workers: dict[str, harness.StepProcess] = {}
        for name, tree in trees if spawn % 2 == 0 else trees[::-1]:
            workers[name] = harness.StepProcess(
                _worker_command("jaxnets", workload, threads), tree_env(tree)
            )
            source = os.path.dirname(os.path.dirname(workers[name].info["jaxnets_file"]))
            assert os.path.samefile(source, tree), (name, source, tree)
        if torch is not None:
            workers["torch"] = harness.StepProcess(_worker_command("torch", workload, threads), env)
        counts = {name: w.info["params"] for name, w in workers.items()}
        _check_columns(counts, {name: w.info["losses"] for name, w in workers.items()}, workload)
        load_before = _load()
        try:
            results = harness.time_interleaved(
                dict(workers), rounds=rounds, calls_per_round=calls, warmup=1, rotate=True
            )
        finally:
            for worker in workers.values():
                worker.close()
        entry = {"load_avg_before": load_before, "load_avg_after": _load(), "results": results}
        entry["ratio_jaxnets_over_jaxnets_before"] = harness.ratios(results, "jaxnets_before")[
            "jaxnets"
        ]
        if torch is not None:
            r = harness.ratios(results, "torch")
            entry["ratio_jaxnets_over_torch"] = r["jaxnets"]
            entry["ratio_jaxnets_before_over_torch"] = r["jaxnets_before"]
        per_spawn.append(entry)
    keys = [k for k in per_spawn[0] if k.startswith("ratio_")]
    out: dict = {"params": counts["jaxnets"], "before_tree": before, "spawns": per_spawn}
    out.update({k: statistics.median(e[k] for e in per_spawn) for k in keys})
    return out


#: steps per timing round
CALLS = {"lenet": 3, "resnet20": 2, "lstm": 5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/out/cpu_vs_torch.json")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=None, help="steps per round")
    parser.add_argument("--workloads", default=",".join(CALLS))
    parser.add_argument("--threads", type=int, default=2, help="PyTorch intra-op threads")
    parser.add_argument(
        "--hugepages",
        action="store_true",
        help="restart with glibc's huge-page tunable for the JAX columns (jaxnets.process)",
    )
    parser.add_argument(
        "--torch-tunables", action="store_true", help="give PyTorch the same glibc tunables"
    )
    parser.add_argument(
        "--before",
        default=None,
        metavar="TREE",
        help="also time the jaxnets of another source tree (e.g. a git worktree of an older "
        "commit), both jaxnets columns in child processes",
    )
    parser.add_argument(
        "--spawns", type=int, default=4, help="with --before: fresh child processes, times"
    )
    parser.add_argument("--torch-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--jaxnets-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_worker:
        torch_worker(args.torch_worker, args.threads)
        return
    if args.jaxnets_worker:
        jaxnets_worker(args.jaxnets_worker)
        return
    if args.hugepages:
        process.reexec_with_hugepages()
    if torch is None:
        print("torch is not installed: skipping the PyTorch column (pip install jaxnets[bench])")
    env = torch_env(args.torch_tunables)
    payload = {
        "benchmark": "cpu_train_step_vs_torch",
        "environment": {
            **harness.environment(),
            "torch": None if torch is None else torch.__version__,
            "torch_threads": None if torch is None else args.threads,
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
            "torch_glibc_tunables": env.get("GLIBC_TUNABLES", ""),
        },
        "workloads": {},
    }
    for name in args.workloads.split(","):
        calls = args.calls or CALLS[name]
        if args.before:
            res = bench_before_after(
                name, args.rounds, calls, args.threads, env, args.before, args.spawns
            )
            ratios = {k: round(v, 4) for k, v in res.items() if k.startswith("ratio_")}
            print(f"{name}: {ratios}")
        else:
            res = bench_workload(name, args.rounds, calls, args.threads, env)
            ms = {k: round(v["median_s"] * 1e3, 2) for k, v in res["results"].items()}
            print(f"{name}: median ms {ms}, jaxnets/torch {res.get('ratio_jaxnets_over_torch')}")
        payload["workloads"][name] = res
    harness.write_json(args.out, payload)


if __name__ == "__main__":
    main()
