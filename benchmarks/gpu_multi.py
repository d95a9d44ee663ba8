"""Data-parallel ResNet training throughput (images/s) on 1, 2, 4, ... GPUs of one machine.

Usage: python benchmarks/gpu_multi.py [--model resnet50] [--per-device-batch 128]
       [--precision bfloat16] [--steps 30] [--fully-sharded] [--out benchmarks/out/gpu_multi.json]

For each device count k in 1, 2, 4, ... up to ``jax.device_count()`` (and the count itself)
it builds ``make_mesh(jax.devices()[:k])``, a global batch of ``k * per_device_batch``
synthetic 224x224x3 images (placed on the mesh once, so the input pipeline is not timed),
and ``make_train_step(model, ..., mesh=mesh)`` with SGD + momentum. It reports the compile
time, the median step time over ``--rounds`` rounds of ``--steps`` steps, images/s and the
scaling efficiency against one device, and, as a baseline, the same step without a mesh
on one device (``make_train_step`` without ``mesh=``). Runs on one GPU too (then only
k = 1), and on CPU for a smoke test (``--model resnet18 --image-size 32
--per-device-batch 2 --steps 1 --rounds 1``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(__file__))
import harness

import jaxnets as jn

MODELS = {"resnet18": jn.models.resnet18, "resnet50": jn.models.resnet50}


def device_counts(total: int) -> list[int]:
    counts, k = [], 1
    while k < total:
        counts.append(k)
        k *= 2
    return [*counts, total]


def measure(args, k: int, use_mesh: bool = True) -> dict:
    model = MODELS[args.model](num_classes=1000)
    mesh = jn.distributed.make_mesh(jax.devices()[:k])
    plan = jn.distributed.fully_sharded(mesh) if args.fully_sharded else mesh
    if not use_mesh:
        plan = None
    batch = k * args.per_device_batch
    shape = (batch, args.image_size, args.image_size, 3)
    opt = optax.sgd(0.1, momentum=0.9)
    ts = jn.create_train_state(model, opt, shape)
    step = jn.make_train_step(
        model, "softmax_cross_entropy", opt, precision=args.precision, mesh=plan
    )
    rng = np.random.default_rng(0)
    images = rng.normal(size=shape).astype(np.float32)
    labels = rng.integers(0, 1000, batch).astype(np.int32)
    data = (
        jax.device_put((images, labels))
        if plan is None
        else jn.distributed.shard_batch((images, labels), plan)
    )
    start = time.perf_counter()
    ts, metrics = step(ts, data)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    for _ in range(3):
        ts, metrics = step(ts, data)
    jax.block_until_ready(metrics)
    per_step = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(args.steps):
            ts, metrics = step(ts, data)
        jax.block_until_ready(metrics)
        per_step.append((time.perf_counter() - start) / args.steps)
    median = statistics.median(per_step)
    held = jn.distributed.bytes_per_device(ts.params)
    return {
        "mesh": use_mesh,
        "devices": k,
        "global_batch": batch,
        "compile_plus_first_step_s": compile_s,
        "step_median_s": median,
        "step_min_s": min(per_step),
        "images_per_s": batch / median,
        "images_per_s_per_device": batch / median / k,
        "param_bytes_on_busiest_device": max(held.values()),
        "final_loss": float(metrics["loss"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    parser.add_argument("--per-device-batch", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--precision", default="bfloat16")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fully-sharded", action="store_true")
    parser.add_argument("--out", default="benchmarks/out/gpu_multi.json")
    args = parser.parse_args()
    plain = measure(args, 1, use_mesh=False)
    runs = [measure(args, k) for k in device_counts(jax.device_count())]
    base = runs[0]["images_per_s"]
    for run in runs:
        run["scaling_efficiency"] = run["images_per_s"] / (base * run["devices"])
    harness.write_json(
        args.out,
        {
            "benchmark": f"data-parallel {args.model} training throughput",
            "environment": harness.environment(),
            "settings": vars(args),
            "one_device_without_mesh": plain,
            "mesh_1_device_over_no_mesh_step_time": runs[0]["step_median_s"]
            / plain["step_median_s"],
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
