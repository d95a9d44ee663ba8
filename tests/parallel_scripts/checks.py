"""Data-parallel behaviours on 8 forced CPU devices; prints one JSON object.

Run with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (tests/test_parallel.py
does). Checks: BatchNorm statistics of the global batch, the error for a batch that does not
divide the devices (step and fit), evaluation of an odd-sized set counting every example
once, and ``fit`` with a mesh (replicated and fully sharded) against ``fit`` without one.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import optax

import jaxnets as jn


def batchnorm_statistics(mesh) -> dict:
    """One step on a batch whose 8 device shards have very different means."""
    rng = np.random.default_rng(0)
    shard_means = np.repeat(np.arange(8.0), 4)[:, None] * np.array([[1.0, -2.0, 3.0]])
    x = (shard_means + rng.normal(size=(32, 3))).astype(np.float32)
    y = rng.integers(0, 2, 32).astype(np.int32)
    model = jn.serial(jn.BatchNorm(momentum=0.9), jn.Dense(2))
    opt = optax.sgd(0.1)
    ts = jn.create_train_state(model, opt, (32, 3))
    step = jn.make_train_step(model, "softmax_cross_entropy", opt, mesh=mesh)
    ts, _ = step(ts, (x, y))
    got = {k: np.asarray(v) for k, v in ts.state["batchnorm_0"].items()}
    want = {"mean": 0.1 * x.mean(0), "var": 0.9 + 0.1 * x.var(0)}
    per_shard = 0.1 * x[:4].mean(0)  # what a device would get from its own 4 examples
    return {
        "max_abs_diff_vs_global": max(float(np.max(np.abs(got[k] - want[k]))) for k in want),
        "max_abs_diff_vs_first_shard": float(np.max(np.abs(got["mean"] - per_shard))),
        "x_sharding": str(jn.distributed.shard_batch((x, y), mesh)[0].sharding.spec),
    }


def batch_size_errors(mesh) -> dict:
    model = jn.models.mlp((8,), 2)
    opt = optax.sgd(0.1)
    data = jn.data.two_spirals(64)
    ts = jn.create_train_state(model, opt, (30, 2))
    step = jn.make_train_step(model, "softmax_cross_entropy", opt, mesh=mesh)
    messages = {}
    try:
        step(ts, (data.inputs[:30], data.labels[:30]))
    except ValueError as e:
        messages["step"] = str(e)
    try:
        jn.fit(model, data, optimizer=opt, batch_size=30, epochs=1, progress=False, mesh=mesh)
    except ValueError as e:
        messages["fit"] = str(e)
    return messages


def odd_evaluation(mesh) -> dict:
    """37 examples, batches of 12: neither divides 8 devices."""
    model = jn.models.mlp((16,), 2, batch_norm=True)
    data = jn.data.two_spirals(64)
    ts = jn.create_train_state(model, optax.sgd(0.1), (8, 2))
    val = data.take(slice(0, 37))
    single = jn.evaluate(jn.make_eval_step(model, "softmax_cross_entropy"), ts, val, 12)
    eval_step = jn.make_eval_step(model, "softmax_cross_entropy", mesh=mesh)
    sharded = jn.evaluate(eval_step, ts, val, 12, mesh)
    counts = [
        float(eval_step(ts, batch)["count"]) for batch in jn.data.eval_batches(val, 12)
    ]  # the step pads batches of 12 (the last with 1 real example) to 16 itself
    return {
        "single": single,
        "mesh": sharded,
        "counts_direct": counts,
        "max_abs_diff": max(abs(single[k] - sharded[k]) for k in single),
    }


def fit_with_mesh(mesh) -> dict:
    model = jn.models.mlp((64, 64), 2, batch_norm=True, dropout=0.1)
    data = jn.data.two_spirals(128)
    train, val = data.take(slice(0, 192)), data.take(slice(192, 256))
    kwargs = dict(
        optimizer=optax.sgd(0.05, momentum=0.9),
        epochs=2,
        batch_size=32,
        val_data=val.take(slice(0, 61)),
        eval_batch_size=20,
        progress=False,
    )
    plain = jn.fit(model, train, **kwargs)
    replicated = jn.fit(model, train, mesh=mesh, **kwargs)
    plan = jn.distributed.fully_sharded(mesh, min_size=1024)
    sharded = jn.fit(model, train, mesh=plan, **kwargs)

    def diff(a, b):
        pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in pairs)

    kernel = sharded.state.params["hidden_1"]["dense"]["kernel"]
    history_diff = max(
        abs(u - v)
        for k in plain.history
        if k != "epoch_time"
        for u, v in zip(plain.history[k], replicated.history[k], strict=True)
    )
    return {
        "params_diff_replicated": diff(plain.state[1:3], replicated.state[1:3]),
        "params_diff_sharded": diff(plain.state[1:3], sharded.state[1:3]),
        "history_diff": history_diff,
        "val_loss": plain.history["val_loss"],
        "sharded_kernel_spec": str(kernel.sharding.spec),
        "sharded_kernel_shard_shape": list(kernel.sharding.shard_shape(kernel.shape)),
        "replicated_kernel_spec": str(
            replicated.state.params["hidden_1"]["dense"]["kernel"].sharding.spec
        ),
    }


def main() -> None:
    mesh = jn.distributed.make_mesh()
    report = {
        "devices": jax.device_count(),
        "batchnorm": batchnorm_statistics(mesh),
        "errors": batch_size_errors(mesh),
        "evaluation": odd_evaluation(mesh),
        "fit": fit_with_mesh(mesh),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
