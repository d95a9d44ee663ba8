"""On GPU: the LSTM language-model train step with cuDNN's LSTM (``jax.experimental.rnn``)
beside jaxnets and raw JAX.

Usage: python benchmarks/gpu_lstm.py [--out benchmarks/out/gpu_lstm.json] [--rounds 20]

Same model and step as ``bench_lstm.py`` (vocabulary 65, embedding 64, LSTM 256, sequence
64, batch 32, adam). ``jax.experimental.rnn.lstm`` is JAX's cuDNN-backed LSTM (forward
and backward are cuDNN calls); its weights are one flat vector in cuDNN's layout with two
biases per gate (PyTorch's convention), so it has ``4 * 256`` more parameters than the
others (asserted). Before timing, the script checks that jaxnets' ``RNN(LSTM)`` with the
cuDNN weights mapped onto it (``kernel = W_ih.T``, ``recurrent_kernel = W_hh.T``, ``bias =
b_ih + b_hh``; same gate order i, f, g, o) gives cuDNN's outputs. Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import rnn

sys.path.insert(0, os.path.dirname(__file__))
import harness
from bench_lstm import BATCH, EMBED, HIDDEN, SEQ, VOCAB, _step_fn, raw_jax

import jaxnets as jn


def cudnn_lm(optimizer):
    k = jax.random.split(jax.random.key(0), 3)
    params = {
        "embed": jax.random.normal(k[0], (VOCAB, EMBED)) / np.sqrt(EMBED),
        "lstm": rnn.init_lstm_weight(k[1], EMBED, HIDDEN, 1, False),
        "w_out": jax.nn.initializers.glorot_uniform()(k[2], (HIDDEN, VOCAB)),
        "b_out": jnp.zeros((VOCAB,)),
    }

    def forward(p, ids):
        x = jnp.take(p["embed"], ids, axis=0)
        zeros = jnp.zeros((1, ids.shape[0], HIDDEN))
        lengths = jnp.full((ids.shape[0],), ids.shape[1], jnp.int32)
        y, _, _ = rnn.lstm(x, zeros, zeros, p["lstm"], lengths, EMBED, HIDDEN, 1, 0.0, False)
        return y @ p["w_out"] + p["b_out"]

    return params, _step_fn(forward, optimizer)


def check_cudnn_matches_jaxnets(weights) -> float:
    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, EMBED, HIDDEN, 1, False)
    params = {"kernel": w_ih[0].T, "recurrent_kernel": w_hh[0].T, "bias": b_ih[0] + b_hh[0]}
    x = jax.random.normal(jax.random.key(1), (BATCH, SEQ, EMBED))
    zeros = jnp.zeros((1, BATCH, HIDDEN))
    lengths = jnp.full((BATCH,), SEQ, jnp.int32)
    with jax.default_matmul_precision("highest"):
        y_cudnn, _, _ = rnn.lstm(
            x,
            zeros,
            zeros,
            weights,
            lengths,
            EMBED,
            HIDDEN,
            1,
            0.0,
            False,
            jax.lax.Precision.HIGHEST,
        )
        y_jn, _ = jn.RNN(jn.LSTM(HIDDEN)).apply(params, {}, x, train=False)
    return float(jnp.max(jnp.abs(y_cudnn - y_jn)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/gpu_lstm.json")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    if jax.default_backend() != "gpu":
        raise SystemExit("gpu_lstm.py needs a CUDA GPU (cuDNN); use bench_lstm.py elsewhere")

    optimizer = optax.adam(1e-3)
    ids = np.random.default_rng(0).integers(0, VOCAB, (BATCH, SEQ + 1)).astype(np.int32)
    x, y = jax.device_put(ids[:, :-1]), jax.device_put(ids[:, 1:])

    model = jn.serial(
        ("embed", jn.Embedding(VOCAB, EMBED)),
        ("lstm", jn.RNN(jn.LSTM(HIDDEN))),
        ("logits", jn.Dense(VOCAB)),
    )
    ts = jn.create_train_state(model, optimizer, jax.ShapeDtypeStruct((BATCH, SEQ), jnp.int32))
    jn_step = jn.make_train_step(model, "softmax_cross_entropy", optimizer, metrics={})
    raw_params, raw_step = raw_jax(optimizer, jnp.float32)
    cudnn_params, cudnn_step = cudnn_lm(optimizer)
    counts = {
        "jaxnets": jn.count_params(ts.params),
        "raw_jax": jn.count_params(raw_params),
        "cudnn": jn.count_params(cudnn_params),
    }
    assert counts["jaxnets"] == counts["raw_jax"] == counts["cudnn"] - 4 * HIDDEN, counts
    max_diff = check_cudnn_matches_jaxnets(cudnn_params["lstm"])
    assert max_diff < 1e-3, f"cuDNN and jaxnets LSTMs differ by {max_diff}"

    box = {
        "jaxnets": ts,
        "raw_jax": (raw_params, optimizer.init(raw_params)),
        "cudnn": (cudnn_params, optimizer.init(cudnn_params)),
    }
    steps = {"jaxnets": jn_step, "raw_jax": raw_step, "cudnn": cudnn_step}

    def runner(name):
        def run():
            box[name], m = steps[name](box[name], (x, y))
            return m

        return run

    results = harness.time_interleaved(
        {name: runner(name) for name in steps}, rounds=args.rounds, calls_per_round=args.calls
    )
    payload = {
        "benchmark": "lstm_lm_train_step_gpu_cudnn",
        "config": {
            "vocab": VOCAB,
            "embed": EMBED,
            "hidden": HIDDEN,
            "seq_len": SEQ,
            "batch": BATCH,
            "optimizer": "adam",
            "dtype": "float32",
        },
        "params": counts,
        "cudnn_vs_jaxnets_max_abs_diff": max_diff,
        "environment": harness.environment(),
        "results": results,
        "ratio_over_raw_jax": harness.ratios(results, "raw_jax"),
    }
    harness.write_json(args.out, payload)


if __name__ == "__main__":
    main()
