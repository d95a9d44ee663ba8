"""ResNet-50 on the CPU: init time, compile time and train-step time at batch 8.

Usage: python benchmarks/bench_resnet50.py [--out benchmarks/out/resnet50_cpu.json]
       [--batch-size 8] [--image-size 224] [--steps 5]

* init: ``model.init`` with real arrays (the 25.6M weights drawn op by op), the same
  under ``jax.jit`` (one compiled program; the first call includes its compilation), and
  through ``jax.eval_shape`` (shapes only, what summaries and counts use); the first
  call and the median of repeats, since the first includes tracing and compilation.
* compile: ``jax.jit(train_step).lower(state, batch)`` and ``.compile()`` of the full
  training step (forward, backward, SGD with momentum), timed separately.
* step: median over ``--steps`` rounds of one blocked step on the same batch.

The model is ``jaxnets.models.resnet50()`` (Keras applications convention, 25,636,712
numbers with the BatchNorm statistics).
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


def timed(fn, repeats: int) -> dict[str, float]:
    """Seconds of the first call of ``fn`` (blocked) and the median of ``repeats`` more."""
    times = []
    for _ in range(1 + repeats):
        start = time.perf_counter()
        harness.block(fn())
        times.append(time.perf_counter() - start)
    return {"first_s": times[0], "median_s": statistics.median(times[1:]) if repeats else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/out/resnet50_cpu.json")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--init-repeats", type=int, default=3)
    args = parser.parse_args()

    model = jn.models.resnet50()
    spec = jax.ShapeDtypeStruct((args.batch_size, args.image_size, args.image_size, 3), "float32")
    key = jax.random.key(0)
    init_real = timed(lambda: model.init(key, spec)[1:], args.init_repeats)
    jitted_init = jax.jit(lambda k: model.init(k, spec)[1:])
    init_jit = timed(lambda: jitted_init(key), args.init_repeats)
    init_abstract = timed(
        lambda: jax.eval_shape(lambda k: model.init(k, spec), key)[1:], args.init_repeats
    )
    _, params, state = jax.eval_shape(lambda k: model.init(k, spec), key)

    optimizer = optax.sgd(0.1, momentum=0.9)
    train_state = jn.create_train_state(model, optimizer, spec)
    step = jn.make_train_step(model, "softmax_cross_entropy", optimizer)
    rng = np.random.default_rng(0)
    batch = (
        jax.device_put(rng.normal(size=spec.shape).astype(np.float32)),
        jax.device_put(rng.integers(0, 1000, args.batch_size).astype(np.int32)),
    )
    start = time.perf_counter()
    lowered = step.lower(train_state, batch)
    lower_s = time.perf_counter() - start
    start = time.perf_counter()
    lowered.compile()
    compile_s = time.perf_counter() - start

    box = {"state": train_state}

    def one_step():
        box["state"], metrics = step(box["state"], batch)
        return metrics

    harness.block(one_step())  # warm-up: the step as users call it compiles here
    step_times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        harness.block(one_step())
        step_times.append(time.perf_counter() - start)
    step_s = statistics.median(step_times)

    payload = {
        "benchmark": "resnet50_cpu",
        "environment": harness.environment(),
        "model": "jaxnets.models.resnet50 (keras convention)",
        "batch": args.batch_size,
        "image_size": args.image_size,
        "params": jn.count_params(params),
        "state": jn.count_params(state),
        "init_real_arrays": init_real,
        "init_jit": init_jit,
        "init_eval_shape": init_abstract,
        "lower_s": lower_s,
        "compile_s": compile_s,
        "step": {
            "median_s": step_s,
            "min_s": min(step_times),
            "max_s": max(step_times),
            "steps": len(step_times),
            "images_per_s": args.batch_size / step_s,
        },
    }
    harness.write_json(args.out, payload)


if __name__ == "__main__":
    main()
