"""LSTM language-model train step: jaxnets vs raw JAX with ``lax.scan`` vs flax ``nn.RNN``.

Usage: python benchmarks/bench_lstm.py [--out benchmarks/out/lstm.json] [--rounds 20]
       [--calls 5] [--dtype float32|bfloat16]

The model is the same in all three (vocabulary 65, embedding 64, one LSTM of 256, a Dense
layer back to the vocabulary; sequence 64, batch 32; the parameter count is asserted
equal): token ids -> embedding -> LSTM over time -> logits, mean softmax cross-entropy,
``jax.value_and_grad``, optax adam, one jitted step with the training state donated.

* ``jaxnets``: ``serial(Embedding, RNN(LSTM), Dense)`` trained by ``jn.make_train_step``.
* ``raw_jax``: hand-written params and a ``lax.scan`` over time differentiated by
  ``jax.value_and_grad`` (the plain formulation: on the CPU per-gate products inside the
  loop; on accelerators one input product for all steps before the loop and one fused
  recurrent product per step, which is also what jaxnets' LSTM runs there). On the CPU
  jaxnets' LSTM runs its hand-written-backward formulation instead (``impl="auto"`` picks
  ``chunked``; see ``jaxnets/_impl/lstm.py``), so there the ratio measures that gain.
* ``flax``: ``nn.Embed``, ``nn.RNN(nn.LSTMCell)``, ``nn.Dense`` (flax computes each gate's
  input product inside the loop, one Dense per gate).

Runs on whatever backend JAX picks (CPU or GPU, ``JAX_PLATFORMS`` to force one). Timed
interleaved on the same batch; the JSON gives medians and the ratios to raw JAX.
"""

from __future__ import annotations

import argparse
import os
import sys

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(__file__))
import harness

import jaxnets as jn

VOCAB, EMBED, HIDDEN, SEQ, BATCH = 65, 64, 256, 64, 32


def _loss(logits, targets):
    return optax.losses.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), targets
    ).mean()


def _step_fn(forward, optimizer):
    """A jitted, donated train step around ``forward(params, ids) -> logits``."""

    def step(carry, batch):
        params, opt_state = carry
        x, y = batch
        loss, grads = jax.value_and_grad(lambda p: _loss(forward(p, x), y))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), {"loss": loss}

    return jax.jit(step, donate_argnums=(0,))


def raw_jax(optimizer, dtype):
    k = jax.random.split(jax.random.key(0), 4)
    glorot, ortho = jax.nn.initializers.glorot_uniform(), jax.nn.initializers.orthogonal()
    params = {
        "embed": jax.random.normal(k[0], (VOCAB, EMBED)) / np.sqrt(EMBED),
        "w_x": glorot(k[1], (EMBED, 4 * HIDDEN)),
        "w_h": ortho(k[2], (HIDDEN, 4 * HIDDEN)),
        "b": jnp.zeros((4 * HIDDEN,)).at[HIDDEN : 2 * HIDDEN].set(1.0),
        "w_out": glorot(k[3], (HIDDEN, VOCAB)),
        "b_out": jnp.zeros((VOCAB,)),
    }

    fused = jax.default_backend() != "cpu"  # the same choice as jaxnets' default

    def forward(p, ids):
        p = jax.tree.map(lambda a: a.astype(dtype), p)
        x = jnp.swapaxes(jnp.take(p["embed"], ids, axis=0), 0, 1)  # time-major for the scan
        if fused:  # all gates and all steps in one input product before the loop
            xs = x @ p["w_x"] + p["b"]
        else:  # per-gate column blocks, cut once before the loop
            xs = x
            w_x, w_h, b = (jnp.split(p[n], 4, axis=-1) for n in ("w_x", "w_h", "b"))

        def cell(carry, x_t):
            c, h = carry
            if fused:
                i, f, g, o = jnp.split(x_t + h @ p["w_h"], 4, axis=-1)
            else:
                i, f, g, o = (x_t @ w_x[k] + h @ w_h[k] + b[k] for k in range(4))
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (c, h), h

        zeros = jnp.zeros((ids.shape[0], HIDDEN), dtype)
        _, hs = jax.lax.scan(cell, (zeros, zeros), xs)
        return jnp.swapaxes(hs, 0, 1) @ p["w_out"] + p["b_out"]

    return params, _step_fn(forward, optimizer)


class FlaxLM(fnn.Module):
    dtype: jnp.dtype = jnp.float32

    @fnn.compact
    def __call__(self, ids):
        x = fnn.Embed(VOCAB, EMBED, dtype=self.dtype)(ids)
        x = fnn.RNN(fnn.LSTMCell(HIDDEN, dtype=self.dtype))(x)
        return fnn.Dense(VOCAB, dtype=self.dtype)(x)


def flax_lm(optimizer, ids, dtype):
    module = FlaxLM(dtype=dtype)
    params = module.init(jax.random.key(0), ids)["params"]
    return params, _step_fn(lambda p, x: module.apply({"params": p}, x), optimizer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/lstm.json")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args()
    dtype = jnp.dtype(args.dtype)

    optimizer = optax.adam(1e-3)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (BATCH, SEQ + 1)).astype(np.int32)
    x, y = jax.device_put(ids[:, :-1]), jax.device_put(ids[:, 1:])

    # in bfloat16 the embedding output is cast, so the LSTM and the Dense compute in it
    cast = [("cast", jn.Lambda(lambda a: a.astype(dtype)))] if dtype != jnp.float32 else []
    model = jn.serial(
        ("embed", jn.Embedding(VOCAB, EMBED)),
        *cast,
        ("lstm", jn.RNN(jn.LSTM(HIDDEN))),
        ("logits", jn.Dense(VOCAB)),
    )
    ts = jn.create_train_state(model, optimizer, jax.ShapeDtypeStruct((BATCH, SEQ), jnp.int32))
    jn_step = jn.make_train_step(model, "softmax_cross_entropy", optimizer, metrics={})

    raw_params, raw_step = raw_jax(optimizer, dtype)
    flax_params, flax_step = flax_lm(optimizer, x, dtype)
    counts = {
        "jaxnets": jn.count_params(ts.params),
        "raw_jax": jn.count_params(raw_params),
        "flax": jn.count_params(flax_params),
    }
    assert len(set(counts.values())) == 1, counts

    box = {
        "jaxnets": ts,
        "raw_jax": (raw_params, optimizer.init(raw_params)),
        "flax": (flax_params, optimizer.init(flax_params)),
    }
    steps = {"raw_jax": raw_step, "flax": flax_step}

    def runner(name):
        def run():
            if name == "jaxnets":
                box[name], m = jn_step(box[name], (x, y))
            else:
                box[name], m = steps[name](box[name], (x, y))
            return m

        return run

    results = harness.time_interleaved(
        {name: runner(name) for name in ("jaxnets", "raw_jax", "flax")},
        rounds=args.rounds,
        calls_per_round=args.calls,
    )
    ratios = harness.ratios(results, "raw_jax")
    payload = {
        "benchmark": "lstm_lm_train_step",
        "config": {
            "vocab": VOCAB,
            "embed": EMBED,
            "hidden": HIDDEN,
            "seq_len": SEQ,
            "batch": BATCH,
            "optimizer": "adam",
            "dtype": args.dtype,
        },
        "params": counts["jaxnets"],
        "environment": harness.environment(),
        "results": results,
        "ratio_over_raw_jax": ratios,
        "ratio_jaxnets_over_flax": results["jaxnets"]["median_s"] / results["flax"]["median_s"],
    }
    harness.write_json(args.out, payload)


if __name__ == "__main__":
    main()
