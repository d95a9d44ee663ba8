"""jaxnets train step vs a hand-written raw-JAX step with the same math, for two MLPs.

Usage: python benchmarks/bench_mlp.py [--out benchmarks/out/mlp.json] [--rounds 40]

All steps: forward (Dense+ReLU layers, linear logits), mean softmax cross-entropy with
integer labels, accuracy, gradients by jax.value_and_grad, optax adam, jit with the
state donated. Two hand-written raw-JAX steps: ``raw_jax`` keeps its parameters in the
same nested dicts that jaxnets' ``mlp`` uses (``hidden_0/dense/kernel``; the layer
contract asks for nested dicts with readable names), so ``jaxnets / raw_jax`` is what the
library itself adds; ``raw_jax_list`` keeps them in a list of ``(w, b)`` tuples, which JAX
flattens faster, so ``raw_jax / raw_jax_list`` is the price of named parameters in a
dispatch-bound step. Timed interleaved on the same batch; the JSON gives medians and
ratios.
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
    candidates = {"jaxnets": harness.stepper(jn_step, ts, (x, y))}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/out/mlp.json")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    payload = {"benchmark": "mlp_train_step", "environment": harness.environment(), "configs": {}}
    for name, (in_shape, hidden, classes, batch) in CONFIGS.items():
        payload["configs"][name] = bench_config(
            name, in_shape, hidden, classes, batch, args.rounds, args.calls
        )
    harness.write_json(args.out, payload)


if __name__ == "__main__":
    main()
