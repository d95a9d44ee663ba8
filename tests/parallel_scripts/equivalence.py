"""Train one model for 20 steps on 1 device and on every device of a mesh; print JSON.

Run with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (tests/test_parallel.py
does). Usage: ``python equivalence.py {mlp,mlp_bn,cnn,lstm}``. Printed: the largest
absolute difference of params and model state between the 1-device run (no mesh, the
plain jitted step) and the mesh run (replicated), between the replicated and the fully
sharded run, and the shard shapes of the fully sharded run's large arrays.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import numpy as np
import optax

import jaxnets as jn

STEPS = 20
BATCH = 32


def build(name: str, rng: np.random.Generator):
    """(model, optimizer, inputs, labels, fully sharded min_size) for ``name``."""
    if name == "mlp":
        x = rng.normal(size=(BATCH * 4, 64)).astype(np.float32)
        model = jn.models.mlp((256, 128), 10)
        return model, optax.adam(1e-3), x, rng.integers(0, 10, len(x)), 2**14
    if name == "mlp_bn":
        x = rng.normal(size=(BATCH * 4, 64)).astype(np.float32)
        model = jn.models.mlp((256, 128), 10, batch_norm=True, dropout=0.1)
        return model, optax.sgd(0.05, momentum=0.9), x, rng.integers(0, 10, len(x)), 2**14
    if name == "cnn":
        x = rng.normal(size=(BATCH * 4, 8, 8, 3)).astype(np.float32)
        model = jn.serial(
            jn.Conv(16, 3),
            jn.BatchNorm(),
            jn.Relu(),
            jn.MaxPool(2),
            jn.Conv(32, 3),
            jn.BatchNorm(),
            jn.Relu(),
            jn.Flatten(),
            jn.Dense(10),
        )
        return model, optax.sgd(0.05, momentum=0.9), x, rng.integers(0, 10, len(x)), 2**12
    if name == "lstm":
        x = rng.normal(size=(BATCH * 4, 12, 8)).astype(np.float32)
        model = jn.serial(jn.RNN(jn.LSTM(32), return_sequences=False), jn.Dense(5))
        return model, optax.adam(1e-3), x, rng.integers(0, 5, len(x)), 2**12
    raise SystemExit(f"unknown model {name!r}")


def train(model, opt, x, y, mesh):
    ts = jn.create_train_state(model, opt, (BATCH, *x.shape[1:]), seed=0)
    step = jn.make_train_step(model, "softmax_cross_entropy", opt, mesh=mesh)
    losses = []
    for i in range(STEPS):
        rows = slice((i * BATCH) % len(x), (i * BATCH) % len(x) + BATCH)
        ts, metrics = step(ts, (x[rows], y[rows]))
        losses.append(float(metrics["loss"]))
    return ts, losses


def max_diff(a, b) -> float:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in pairs)


def main(name: str) -> None:
    start = time.perf_counter()
    model, opt, x, y, min_size = build(name, np.random.default_rng(0))
    y = y.astype(np.int32)
    mesh = jn.distributed.make_mesh()
    single, single_losses = train(model, opt, x, y, None)
    replicated, _ = train(model, opt, x, y, mesh)
    plan = jn.distributed.fully_sharded(mesh, min_size=min_size)
    sharded, _ = train(model, opt, x, y, plan)
    large = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(sharded.params):
        if leaf.size >= min_size:
            shard = leaf.sharding.shard_shape(leaf.shape)
            large[jax.tree_util.keystr(path)] = {
                "shape": list(leaf.shape),
                "shard_shape": list(shard),
                "fraction": float(np.prod(shard)) / leaf.size,
                "devices_holding": len({s.device for s in leaf.addressable_shards}),
            }
    held = jn.distributed.bytes_per_device((sharded.params, sharded.opt_state))
    total = sum(leaf.nbytes for leaf in jax.tree.leaves((sharded.params, sharded.opt_state)))
    report = {
        "model": name,
        "devices": jax.device_count(),
        "steps": STEPS,
        "loss_first_last": [single_losses[0], single_losses[-1]],
        "max_abs_diff_mesh_vs_single": max_diff(
            (single.params, single.state), (replicated.params, replicated.state)
        ),
        "max_abs_diff_sharded_vs_replicated": max_diff(
            (replicated.params, replicated.state, replicated.opt_state),
            (sharded.params, sharded.state, sharded.opt_state),
        ),
        "replicated_param_spec": str(jax.tree.leaves(replicated.params)[0].sharding.spec),
        "large_params": large,
        "sharded_bytes_max_device_over_total": max(held.values()) / total,
        "seconds": time.perf_counter() - start,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
