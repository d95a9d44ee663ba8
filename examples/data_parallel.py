"""Train on every device of one machine, or of several, with the same code as on one device.

One machine (all its GPUs, or N simulated CPU devices)::

    python examples/data_parallel.py
    python examples/data_parallel.py --cpu-devices 8
    python examples/data_parallel.py --cpu-devices 8 --fully-sharded

Several machines (one command per machine; process 0's address and a free port)::

    JAX_COORDINATOR_ADDRESS=10.0.0.1:9876 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0 \\
        python examples/data_parallel.py --distributed
    JAX_COORDINATOR_ADDRESS=10.0.0.1:9876 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=1 \\
        python examples/data_parallel.py --distributed

It trains a BatchNorm MLP on scikit-learn's digits with ``jaxnets.fit(..., mesh=mesh)``:
every batch is split over the devices, the parameters are replicated (or, with
``--fully-sharded``, the large ones split), BatchNorm sees the whole batch. With several
processes each one reads its own part of the training set and feeds
``--batch-size / processes`` examples a step, so the global batch stays ``--batch-size``.
On one machine it then trains the same model without a mesh and prints both accuracies.
"""

from __future__ import annotations

import argparse
import os
import time


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-devices", type=int, default=0, help="simulate N CPU devices")
    parser.add_argument("--distributed", action="store_true", help="join a multi-host run")
    parser.add_argument("--fully-sharded", action="store_true")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size")
    parser.add_argument("--epochs", type=int, default=20)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.cpu_devices:  # must happen before JAX starts
        os.environ["JAX_PLATFORMS"] = "cpu"
        flags = os.environ.get("XLA_FLAGS", "")
        count = f"--xla_force_host_platform_device_count={args.cpu_devices}"
        os.environ["XLA_FLAGS"] = f"{flags} {count}".strip()

    import jax
    import optax

    import jaxnets as jn

    if args.distributed:
        jn.distributed.initialize()  # reads JAX_COORDINATOR_ADDRESS, ..._NUM_PROCESSES, ..._ID
    main_process = jax.process_index() == 0

    def say(message: str) -> None:
        if main_process:
            print(message, flush=True)

    mesh = jn.distributed.make_mesh()
    plan = jn.distributed.fully_sharded(mesh, min_size=4096) if args.fully_sharded else mesh
    per_process = args.batch_size // jax.process_count()
    say(
        f"{jax.process_count()} process(es), {jax.device_count()} {jax.default_backend()} "
        f"devices in the mesh {dict(mesh.shape)}, batch {per_process} per process"
    )
    train, test = jn.data.load_digits()
    model = jn.models.mlp((256, 128), 10, batch_norm=True)
    settings = dict(
        optimizer=optax.adam(3e-3),
        epochs=args.epochs,
        batch_size=per_process,
        val_data=test,
        progress=False,
    )
    start = time.perf_counter()
    result = jn.fit(model, jn.distributed.host_shard(train), mesh=plan, **settings)
    seconds = time.perf_counter() - start
    kernel = result.state.params["hidden_0"]["dense"]["kernel"]
    say(
        f"data parallel: test accuracy {result.history['val_accuracy'][-1]:.4f} "
        f"in {seconds:.1f} s; hidden_0 kernel {kernel.shape} is stored as "
        f"{kernel.sharding.shard_shape(kernel.shape)} per device ({kernel.sharding.spec})"
    )
    if jax.process_count() == 1:
        single = jn.fit(model, train, **settings)
        say(f"one device:    test accuracy {single.history['val_accuracy'][-1]:.4f}")
    if args.distributed:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
