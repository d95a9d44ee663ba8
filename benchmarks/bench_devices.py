"""The data-parallel train step on 1, 2, 4 and 8 forced CPU devices.

Usage: python benchmarks/bench_devices.py [--out benchmarks/out/devices.json] [--rounds 10]

Each device count runs in its own subprocess (``XLA_FLAGS=
--xla_force_host_platform_device_count=N``; JAX fixes the count at start-up). In it, four
steps with the same math are timed interleaved on the same, already placed batch:

* ``plain``: ``make_train_step`` without a mesh (one device), the baseline of the ratios;
* ``mesh``: ``make_train_step(..., mesh=make_mesh())``, state replicated on N devices;
* ``fully_sharded``: the same with a ``fully_sharded`` plan;
* ``raw_jit``: the same step function under a bare ``jax.jit`` with the mesh's
  ``in_shardings``/``out_shardings``, to show what jaxnets' wrapper costs on top.

Models: a BatchNorm MLP (784-512-512-10, batch 256) and a small BatchNorm CNN (16x16x3,
batch 64). The forced devices share the machine's cores, so this shows that the step runs
and how it scales here, not the speed-up of real devices.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness

DEVICE_COUNTS = (1, 2, 4, 8)


def models():
    import jaxnets as jn

    cnn = jn.serial(
        jn.Conv(16, 3),
        jn.BatchNorm(),
        jn.Relu(),
        jn.Conv(32, 3, strides=2),
        jn.BatchNorm(),
        jn.Relu(),
        jn.Conv(32, 3, strides=2),
        jn.BatchNorm(),
        jn.Relu(),
        jn.GlobalAvgPool(),
        jn.Dense(10),
    )
    return {
        "mlp_bn_b256": (jn.models.mlp((512, 512), 10, batch_norm=True), (256, 784)),
        "cnn_bn_b64": (cnn, (64, 16, 16, 3)),
    }


def worker(rounds: int) -> dict:
    import jax
    import numpy as np
    import optax

    import jaxnets as jn
    from jaxnets.train.step import make_train_step

    mesh = jn.distributed.make_mesh()
    plan = jn.distributed.as_plan(mesh)
    opt = optax.sgd(0.01, momentum=0.9)
    results = {}
    for name, (model, shape) in models().items():
        rng = np.random.default_rng(0)
        x = rng.normal(size=shape).astype(np.float32)
        y = rng.integers(0, 10, shape[0]).astype(np.int32)
        placed = jn.distributed.shard_batch((x, y), mesh)
        single = jax.device_put((x, y), jax.devices()[0])

        steps = {
            "plain": (make_train_step(model, "softmax_cross_entropy", opt), single),
            "mesh": (make_train_step(model, "softmax_cross_entropy", opt, mesh=mesh), placed),
            "fully_sharded": (
                make_train_step(
                    model, "softmax_cross_entropy", opt, mesh=jn.distributed.fully_sharded(mesh)
                ),
                placed,
            ),
        }
        # The same step function under a bare jax.jit with the replicated shardings.
        wrapped = steps["mesh"][0]
        ts0 = jn.create_train_state(model, opt, shape)
        shardings = jn.distributed.state_shardings(ts0, plan)
        raw = jax.jit(
            wrapped.fn,
            in_shardings=(shardings, plan.batch_sharding()),
            out_shardings=(shardings, plan.replicated()),
            donate_argnums=(0,),
        )
        steps["raw_jit"] = (raw, placed)

        candidates = {}
        for label, (step, batch) in steps.items():
            ts = jn.create_train_state(model, opt, shape)
            if label == "raw_jit":
                ts = jn.distributed.place_state(ts, plan)
            holder = [ts]

            def call(step=step, batch=batch, holder=holder):
                holder[0], metrics = step(holder[0], batch)
                return metrics["loss"]

            candidates[label] = call
        timings = harness.time_interleaved(candidates, rounds=rounds, calls_per_round=5)
        results[name] = {
            "batch": shape[0],
            "timings": timings,
            "ratio_to_plain": harness.ratios(timings, "plain"),
            "examples_per_s": {k: shape[0] / v["median_s"] for k, v in timings.items()},
        }
    return {"devices": jax.device_count(), "environment": harness.environment(), "models": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/out/devices.json")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.rounds)))
        return
    runs = {}
    for n in DEVICE_COUNTS:
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n}"
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", "--rounds", str(args.rounds)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode:
            raise SystemExit(f"{n} devices failed:\n{proc.stderr[-3000:]}")
        runs[str(n)] = json.loads(proc.stdout.strip().splitlines()[-1])
    names = list(runs["1"]["models"])
    scaling = {
        name: {
            n: runs[n]["models"][name]["timings"]["mesh"]["median_s"]
            / runs["1"]["models"][name]["timings"]["mesh"]["median_s"]
            for n in runs
        }
        for name in names
    }
    harness.write_json(
        args.out,
        {
            "benchmark": "data-parallel train step on forced CPU devices",
            "environment": runs["1"]["environment"],
            "note": "forced CPU devices share the machine's cores; the machine was shared "
            "with other jobs while measuring",
            "mesh_step_time_relative_to_1_device": scaling,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
