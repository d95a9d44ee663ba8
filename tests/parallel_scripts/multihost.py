"""One process of a two-process data-parallel run on loopback, or its one-process reference.

Usage (tests/test_parallel.py starts these with ``XLA_FLAGS`` forcing 2 CPU devices per
process)::

    python multihost.py worker PROCESS_ID NUM_PROCESSES PORT OUT.npz
    python multihost.py reference NUM_PROCESSES OUT.npz   # 4 forced devices, one process

Each worker joins through ``jaxnets.distributed.initialize``, reads its own shard of the
data (``host_shard``), trains ``STEPS`` steps on a mesh over every device of every process,
evaluates on the whole (odd-sized) validation set, then runs ``fit`` for one epoch, from
its shard and from a ``jaxnets.data.Pipeline`` that reads only its slice of each global
batch. The
reference builds the same global batches (the hosts' batches concatenated in process order)
in one process. Both save the parameters and the evaluation results.
"""

from __future__ import annotations

import sys

import numpy as np

STEPS = 6
LOCAL_BATCH = 8


def data_sets():
    import jaxnets as jn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(102, 12)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    train = jn.data.ArrayDataset(x[:96], y[:96])
    val = jn.data.ArrayDataset(x[96:], y[96:])  # 6 examples: not a multiple of 4 devices
    return train, val


def setup():
    import optax

    import jaxnets as jn

    model = jn.models.mlp((32,), 2, batch_norm=True)
    return jn, model, optax.sgd(0.1, momentum=0.9)


def local_batches(jn, shard, steps):
    stream = jn.data.batches(shard, LOCAL_BATCH, seed=0, epoch=0)
    return [next(stream) for _ in range(steps)]


def train_and_eval(jn, model, opt, batches, val):
    mesh = jn.distributed.make_mesh()
    ts = jn.create_train_state(model, opt, (LOCAL_BATCH, 12), seed=0)
    step = jn.make_train_step(model, "softmax_cross_entropy", opt, mesh=mesh)
    for batch in batches:
        ts, _ = step(ts, batch)
    eval_step = jn.make_eval_step(model, "softmax_cross_entropy", mesh=mesh)
    metrics = jn.evaluate(eval_step, ts, val, batch_size=4, mesh=mesh)
    return ts, metrics


def fit_from_pipeline(jn, model, opt, train, num_processes):
    """fit for one epoch from a Pipeline of global batches of ``LOCAL_BATCH`` examples a
    process, which gives each running process its slice of every global batch (each host
    reads only its share; the reference's one process reads them whole)."""
    pairs = list(zip(train.inputs, train.labels, strict=True))
    pipeline = jn.data.Pipeline(
        pairs, LOCAL_BATCH * num_processes, seed=5, prepare=lambda batch: batch
    )
    result = jn.fit(
        model, pipeline, optimizer=opt, epochs=1, progress=False, mesh=jn.distributed.make_mesh()
    )
    return {f"pipe_params{k}": v for k, v in flat(result.state.params).items()}


def flat(tree) -> dict[str, np.ndarray]:
    import jax

    return {
        jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


def worker(process_id: int, num_processes: int, port: int, out: str) -> None:
    import jax

    import jaxnets as jn

    jn.distributed.initialize(f"127.0.0.1:{port}", num_processes, process_id)
    jn, model, opt = setup()
    train, val = data_sets()
    shard = jn.distributed.host_shard(train)
    ts, metrics = train_and_eval(jn, model, opt, local_batches(jn, shard, STEPS), val)
    result = jn.fit(
        model,
        shard,
        optimizer=opt,
        epochs=1,
        batch_size=LOCAL_BATCH,
        val_data=val,
        eval_batch_size=4,
        progress=False,
        mesh=jn.distributed.make_mesh(),
    )
    arrays = {f"params{k}": v for k, v in flat(ts.params).items()}
    arrays.update({f"eval_{k}": np.asarray(v) for k, v in metrics.items()})
    arrays.update(
        {f"fit_{k}": np.asarray(v) for k, v in result.history.items() if k != "epoch_time"}
    )
    arrays.update(fit_from_pipeline(jn, model, opt, train, num_processes))
    arrays["devices"] = np.asarray([jax.device_count(), jax.local_device_count()])
    np.savez(out, **arrays)
    jax.distributed.shutdown()


def reference(num_processes: int, out: str) -> None:
    jn, model, opt = setup()
    train, val = data_sets()
    per_host = [
        local_batches(jn, jn.distributed.host_shard(train, p, num_processes), STEPS)
        for p in range(num_processes)
    ]
    batches = [
        tuple(np.concatenate(parts) for parts in zip(*step_batches, strict=True))
        for step_batches in zip(*per_host, strict=True)
    ]
    ts, metrics = train_and_eval(jn, model, opt, batches, val)
    arrays = {f"params{k}": v for k, v in flat(ts.params).items()}
    arrays.update({f"eval_{k}": np.asarray(v) for k, v in metrics.items()})
    arrays.update(fit_from_pipeline(jn, model, opt, train, num_processes))
    np.savez(out, **arrays)


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        worker(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        reference(int(sys.argv[2]), sys.argv[3])
