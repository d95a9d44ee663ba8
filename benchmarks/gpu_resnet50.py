"""ResNet-50 training throughput (images/s) on one accelerator, bfloat16 compute.

Usage (on a GPU machine, from the repository root, nothing installed):
    PYTHONPATH=. python benchmarks/gpu_resnet50.py OUT.json
    PYTHONPATH=. python benchmarks/gpu_resnet50.py OUT.json --batch-size 2 \
        --image-size 64 --steps 2 --warmup 1     # a smoke run on the CPU

Parameters and optimizer state stay float32; the images are cast to ``--dtype``
(bfloat16 by default) on the device, and every layer computes in its input's dtype
(kernels are cast to it; BatchNorm statistics are computed in float32). The step is
``jaxnets.make_train_step`` (forward, backward, SGD with momentum 0.9, BatchNorm state),
jitted with the state donated. After ``--warmup`` steps (the first compiles; its time
is reported as ``first_step_s``) the script times ``--steps`` steps on a device-resident
batch, blocking once at the end, and writes images/s, the step time and the device to
the JSON file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(__file__))
import harness

import jaxnets as jn

#: Forward FLOPs of one 224x224 ResNet-50 image (about 4.1 G multiply-adds); training
#: costs about three times as much.
FORWARD_FLOPS_224 = 8.2e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="path of the JSON result")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5, help="steps before timing (>= 1)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--num-classes", type=int, default=1000)
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be >= 1")

    dtype = jnp.dtype(args.dtype)
    shape = (args.batch_size, args.image_size, args.image_size, 3)
    model = jn.models.resnet50(num_classes=args.num_classes)
    optimizer = optax.sgd(1e-3, momentum=0.9)  # small: random data, only the speed matters
    train_state = jn.create_train_state(model, optimizer, jax.ShapeDtypeStruct(shape, dtype))
    step = jn.make_train_step(model, "softmax_cross_entropy", optimizer)

    rng = np.random.default_rng(0)
    images = jax.device_put(rng.normal(size=shape).astype(np.float32)).astype(dtype)
    labels = jax.device_put(rng.integers(0, args.num_classes, args.batch_size).astype(np.int32))
    batch = (images, labels)

    start = time.perf_counter()
    train_state, metrics = step(train_state, batch)  # traces and compiles
    harness.block(metrics)
    first_step_s = time.perf_counter() - start
    for _ in range(args.warmup - 1):
        train_state, metrics = step(train_state, batch)
    harness.block(metrics)
    start = time.perf_counter()
    for _ in range(args.steps):
        train_state, metrics = step(train_state, batch)
    harness.block((train_state.params, metrics))
    elapsed = time.perf_counter() - start

    step_s = elapsed / args.steps
    images_per_s = args.batch_size / step_s
    flops = 3 * FORWARD_FLOPS_224 * (args.image_size / 224) ** 2
    device = jax.devices()[0]
    payload = {
        "benchmark": "resnet50_train_throughput",
        "environment": harness.environment(),
        "device_kind": getattr(device, "device_kind", str(device)),
        "model": "jaxnets.models.resnet50 (keras convention)",
        "batch": args.batch_size,
        "image_size": args.image_size,
        "compute_dtype": args.dtype,
        "param_dtype": str(jax.tree.leaves(train_state.params)[0].dtype),
        "steps": args.steps,
        "warmup": args.warmup,
        "first_step_s": first_step_s,
        "step_s": step_s,
        "images_per_s": images_per_s,
        "approx_train_tflop_per_s": images_per_s * flops / 1e12,
        "final_loss": float(metrics["loss"]),
        "loss_is_finite": bool(np.isfinite(float(metrics["loss"]))),
    }
    harness.write_json(args.out, payload)


if __name__ == "__main__":
    main()
