"""jaxnets train step vs a hand-written raw-JAX step with the same math, for two MLPs.

Usage: python benchmarks/bench_mlp.py [--out benchmarks/out/mlp.json] [--rounds 40]
       [--processes 5] [--configs mlp_64_32_10_b32]

All steps: forward (Dense+ReLU layers, linear logits), mean softmax cross-entropy with
integer labels, accuracy, gradients by jax.value_and_grad, optax adam, jit with the
state donated. Two hand-written raw-JAX steps: ``raw_jax`` keeps its parameters in the
same nested dicts that jaxnets' ``mlp`` uses (``hidden_0/dense/kernel``; the layer
contract asks for nested dicts with readable names), so ``jaxnets / raw_jax`` is what the
library itself adds; ``raw_jax_list`` keeps them in a list of ``(w, b)`` tuples, which JAX
flattens faster, so ``raw_jax / raw_jax_list`` is the price of named parameters in a
dispatch-bound step. ``jaxnets_reading_params`` reads ``ts.params`` after every step,
which makes the train state build its nested dicts and the next step take them apart
again (a state returned by a step otherwise hands the compiled step's flat list of arrays
straight to the next step). Timed interleaved on the same batch; the JSON gives medians,
ratios, and per candidate the dispatching thread's CPU time and the context switches per
step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(__file__))
import harness

import jaxnets as jn

CONFIGS = {
    "mlp_64_32_10_b32": ((64,), (32,), 10, 32),
    "mlp_784_512_512_10_b128": ((784,), (512, 512), 10, 128),
}


def raw_jax_step(sizes, optimizer, *, named: bool = True):
    """A hand-written MLP train step. Params are nested dicts named as jaxnets' ``mlp``
    names them (``{"hidden_0": {"dense": {"kernel", "bias"}}, ..., "logits": {...}}``), or
    with ``named=False`` a list of ``(w, b)`` pairs."""
    depth = len(sizes) - 1

    def name(i):
        return "logits" if i == depth - 1 else f"hidden_{i}"

    def init(key):
        pairs = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            w = jax.nn.initializers.glorot_uniform()(jax.random.fold_in(key, i), (n_in, n_out))
            pairs.append((w, jnp.zeros((n_out,))))
        if not named:
            return pairs
        params = {name(i): {"kernel": w, "bias": b} for i, (w, b) in enumerate(pairs)}
        for i in range(depth - 1):
            params[name(i)] = {"dense": params[name(i)]}
        return params

    def pairs_of(params):
        if not named:
            return params
        layers = [params[name(i)] for i in range(depth)]
        layers = [layer.get("dense", layer) for layer in layers]
        return [(layer["kernel"], layer["bias"]) for layer in layers]

    def forward(params, x):
        pairs = pairs_of(params)
        for w, b in pairs[:-1]:
            x = jax.nn.relu(x @ w + b)
        w, b = pairs[-1]
        return x @ w + b

    def step(carry, batch):
        params, opt_state = carry
        x, y = batch

        def loss_fn(p):
            logits = forward(p, x)
            loss = optax.losses.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        accuracy = jnp.mean((jnp.argmax(logits, -1) == y).astype(jnp.float32))
        return (params, opt_state), {"loss": loss, "accuracy": accuracy}

    return init, jax.jit(step, donate_argnums=(0,))


def bench_config(name, in_shape, hidden, classes, batch, rounds, calls):
    optimizer = optax.adam(1e-3)
    rng = np.random.default_rng(0)
    x = jax.device_put(rng.normal(size=(batch, *in_shape)).astype(np.float32))
    y = jax.device_put(rng.integers(0, classes, batch).astype(np.int32))

    model = jn.models.mlp(hidden, classes)
    ts = jn.create_train_state(model, optimizer, x.shape)
    jn_step = jn.make_train_step(model, "softmax_cross_entropy", optimizer)

    sizes = (int(np.prod(in_shape)), *hidden, classes)

    def reading_params(ts, batch):  # a loop that reads the dicts every step
        ts, metrics = jn_step(ts, batch)
        ts.params  # noqa: B018 (the read is the point)
        return ts, metrics

    candidates = {
        "jaxnets": harness.stepper(jn_step, ts, (x, y)),
        "jaxnets_reading_params": harness.stepper(
            reading_params, jn.create_train_state(model, optimizer, x.shape), (x, y)
        ),
    }
    for column, named in (("raw_jax", True), ("raw_jax_list", False)):
        raw_init, raw_step = raw_jax_step(sizes, optimizer, named=named)
        raw_params = raw_init(jax.random.key(0))
        assert jn.count_params(ts.params) == jn.count_params(raw_params)
        if named:
            assert jax.tree.structure(raw_params) == jax.tree.structure(ts.params)
        candidates[column] = harness.stepper(
            raw_step, (raw_params, optimizer.init(raw_params)), (x, y)
        )

    results = harness.time_interleaved(candidates, rounds=rounds, calls_per_round=calls)
    ratios = harness.ratios(results, "raw_jax")
    return {
        "batch": batch,
        "sizes": list(sizes),
        "params": jn.count_params(ts.params),
        "results": results,
        "ratio_jaxnets_over_raw": ratios["jaxnets"],
        "ratio_jaxnets_over_raw_list": harness.ratios(results, "raw_jax_list")["jaxnets"],
        "ratio_raw_over_raw_list": harness.ratios(results, "raw_jax_list")["raw_jax"],
    }


RATIOS = ("ratio_jaxnets_over_raw", "ratio_jaxnets_over_raw_list", "ratio_raw_over_raw_list")


def run_processes(args) -> dict:
    """Run the benchmark in ``args.processes`` fresh processes, one after another, and
    gather them: per config, each process's ratio and the median of those ratios."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.processes):
            out = os.path.join(tmp, f"run{i}.json")
            command = [sys.executable, __file__, "--out", out, "--processes", "1"]
            command += ["--rounds", str(args.rounds), "--calls", str(args.calls)]
            command += ["--configs", ",".join(args.configs)]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            with open(out) as f:
                runs.append(json.load(f))
    configs = {}
    for name in args.configs:
        per_run = [run["configs"][name] for run in runs]
        configs[name] = {key: statistics.median(r[key] for r in per_run) for key in RATIOS}
        configs[name]["ratios_per_process"] = [r["ratio_jaxnets_over_raw"] for r in per_run]
        configs[name]["processes"] = per_run
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/out/mlp.json")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run in this many fresh processes and report the median of their ratios "
        "(how XLA's threads settle differs from process to process)",
    )
    parser.add_argument("--configs", type=lambda s: s.split(","), default=list(CONFIGS))
    args = parser.parse_args()
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}; choose from {sorted(CONFIGS)}")
    payload = {"benchmark": "mlp_train_step", "environment": harness.environment()}
    if args.processes > 1:
        payload["configs"] = run_processes(args)
    else:
        payload["configs"] = {
            name: bench_config(name, *CONFIGS[name], args.rounds, args.calls)
            for name in args.configs
        }
    harness.write_json(args.out, payload)


if __name__ == "__main__":
    main()
