"""Where a dispatch-bound train step's microseconds go: variants of the MLP 64-32-10 step.

Usage: python benchmarks/probe_dispatch.py [--out benchmarks/out/dispatch.json] [--rounds 30]

Every variant runs the same compiled arithmetic (one adam step of the 64-32-10 MLP on a
batch of 32, metrics included) and differs only in how the state crosses the ``jax.jit``
boundary and what Python runs around the call:

- ``raw_jax``: a hand-written step over the nested dicts, ``(params, opt_state)`` donated.
- ``dicts_through_jit``: jaxnets' update over ``(params, state, opt_state)`` as nested
  dicts, called bare (what session 2's ``TrainStep`` jitted).
- ``dicts_with_wrapper``: that inside a wrapper that slices a 5-tuple state and builds the
  next one (about 1 us of Python, what session 2's ``TrainStep`` added).
- ``dicts_busy_0.6us``: ``dicts_through_jit`` followed by a 0.6 us busy loop.
- ``flat_no_wrapper``: the compiled step on one flat list of arrays, called bare.
- ``jaxnets``: ``make_train_step`` as it is (the flat list kept in the ``TrainState``).
- ``device_step_counter``: ``dicts_through_jit`` with a device step counter in the carry.

The JSON gives per variant the median step time, the dispatching thread's CPU time per
step and the context switches per step (``harness.time_interleaved``).
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(__file__))
import bench_mlp
import harness

import jaxnets as jn


def variants(x, y) -> dict:
    optimizer = optax.adam(1e-3)
    model = jn.models.mlp((32,), 10)
    batch = (x, y)

    def fresh():
        return jn.create_train_state(model, optimizer, x.shape)

    step = jn.make_train_step(model, "softmax_cross_entropy", optimizer)
    step(fresh(), batch)  # compiles, and gives the model's update function
    update = step._update

    def dict_step(carry, batch):
        *carry, out = update(*carry, batch, None, None)
        return tuple(carry), out

    dicts = jax.jit(dict_step, donate_argnums=(0,))

    def with_wrapper(ts, batch):
        carry, out = dicts(ts[1:4], batch)
        return (ts[0] + 1, *carry, ts[4]), out

    def busy(carry, batch):
        result = dicts(carry, batch)
        for _ in range(80):
            pass
        return result

    def counter_step(carry, batch):
        count, inner = carry
        inner, out = dict_step(inner, batch)
        return (count + 1, inner), out

    counted = jax.jit(counter_step, donate_argnums=(0,))

    def carry(ts):
        return tuple(ts[1:4])

    raw_init, raw_step = bench_mlp.raw_jax_step((64, 32, 10), optimizer)
    raw_params = raw_init(jax.random.key(0))
    flat_state = step(fresh(), batch)[0]
    return {
        "raw_jax": (raw_step, (raw_params, optimizer.init(raw_params))),
        "dicts_through_jit": (dicts, carry(fresh())),
        "dicts_with_wrapper": (with_wrapper, tuple(fresh())),
        "dicts_busy_0.6us": (busy, carry(fresh())),
        "flat_no_wrapper": (step._jitted, flat_state._leaves),
        "jaxnets": (step, fresh()),
        "device_step_counter": (counted, (jnp.int32(0), carry(fresh()))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/out/dispatch.json")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = jax.device_put(rng.normal(size=(32, 64)).astype(np.float32))
    y = jax.device_put(rng.integers(0, 10, 32).astype(np.int32))
    candidates = {
        name: harness.stepper(fn, state, (x, y)) for name, (fn, state) in variants(x, y).items()
    }
    results = harness.time_interleaved(candidates, rounds=args.rounds, calls_per_round=args.calls)
    payload = {
        "benchmark": "dispatch_probe_mlp_64_32_10_b32",
        "environment": harness.environment(),
        "results": results,
        "ratios_to_raw_jax": harness.ratios(results, "raw_jax"),
    }
    harness.write_json(args.out, payload)


if __name__ == "__main__":
    main()
