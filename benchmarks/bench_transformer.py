"""A Transformer-block train step: jaxnets vs hand-written raw JAX vs PyTorch eager, and the
compile time of a stack of blocks through ``repeat`` vs unrolled.

Usage: python benchmarks/bench_transformer.py [--out benchmarks/out/transformer.json]
       [--d-model 256] [--heads 4] [--seq 128] [--batch 32] [--threads 2] [--rounds 15]
       [--calls 5] [--depth 12] [--compile-rounds 3] [--smoke]

The step (the same math in every column, parameter counts asserted equal): a pre-norm
encoder block ``x + attn(LN(x))``, ``x + mlp(LN(x))`` with exact GELU, MLP width
``4 * d_model``, dropout 0; loss the mean squared error against a fixed target; Adam 1e-3.

* ``jaxnets``: ``jn.TransformerBlock`` in ``jn.make_train_step`` (``impl="auto"``).
* ``raw_jax``: the same block written by hand with ``jnp.einsum`` and ``jax.nn.softmax``,
  ``jax.value_and_grad`` and optax in one ``jax.jit`` with donation.
* ``torch``: ``nn.TransformerEncoderLayer(norm_first=True, activation="gelu",
  batch_first=True, dropout=0)`` in eager mode with ``torch.set_num_threads(threads)``.

Each column first trains a few steps (the loss must fall); the columns are then timed
round-robin (``harness.time_interleaved``). The JSON gives medians and the ratios
jaxnets/raw_jax and jaxnets/torch, then the compile time (lowering and compiling a
``jax.grad`` step) of ``depth`` blocks as ``jn.repeat(block, depth)`` and as
``jn.serial`` of ``depth`` blocks, the median of ``--compile-rounds``. ``--smoke`` runs
tiny sizes (d_model 16, sequence 8, batch 2, depth 2, one round) to check the script.
PyTorch is optional: without it the torch column is skipped with a message.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(__file__))
import harness

import jaxnets as jn


def _per_example_mse(y, target):
    return jnp.mean(jnp.square(y - target), axis=(1, 2))


def jaxnets_step(params, x, target):
    """``(run, losses)``: a jaxnets train-step callable and the losses of a few steps."""
    heads = params["heads"]
    model = jn.TransformerBlock(heads, 4 * x.shape[-1])
    opt = optax.adam(1e-3)
    ts = jn.create_train_state(model, opt, x.shape)
    ts = ts._replace(params=params["block"], opt_state=opt.init(params["block"]))
    step = jn.make_train_step(model, _per_example_mse, opt, metrics={})
    losses = []
    for _ in range(3):
        ts, m = step(ts, (x, target))
        losses.append(float(m["loss"]))
    return harness.stepper(step, ts, (x, target)), losses


def _layer_norm(p, x):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * p["scale"] + p["bias"]


def raw_block(p, x):
    """The pre-norm block written by hand over the params layout of ``TransformerBlock``."""
    a = p["attention"]
    h = _layer_norm(p["attention_norm"], x)
    q, k, v = (
        jnp.einsum("btf,fhd->bthd", h, a[n]["kernel"]) + a[n]["bias"]
        for n in ("query", "key", "value")
    )
    logits = jnp.einsum("bthd,bshd->bhts", q, k) / math.sqrt(q.shape[-1])
    o = jnp.einsum("bhts,bshd->bthd", jax.nn.softmax(logits, axis=-1), v)
    x = x + jnp.einsum("bthd,hdo->bto", o, a["output"]["kernel"]) + a["output"]["bias"]
    h = _layer_norm(p["mlp_norm"], x)
    u = jax.nn.gelu(h @ p["mlp_in"]["kernel"] + p["mlp_in"]["bias"], approximate=False)
    return x + u @ p["mlp_out"]["kernel"] + p["mlp_out"]["bias"]


def raw_jax_step(params, x, target):
    opt = optax.adam(1e-3)

    def loss(p):
        return jnp.mean(jnp.square(raw_block(p, x) - target))

    def step(carry, batch):
        p, s = carry
        value, grads = jax.value_and_grad(loss)(p)
        updates, s = opt.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), {"loss": value}

    step = jax.jit(step, donate_argnums=0)
    carry = (params, opt.init(params))
    losses = []
    for _ in range(3):
        carry, m = step(carry, (x, target))
        losses.append(float(m["loss"]))
    return harness.stepper(step, carry, (x, target)), losses


def torch_step(params, x, target, threads):
    """``(run, losses, count)``, or None without PyTorch."""
    try:
        import torch
    except ImportError:
        print("torch is not installed: the torch column is skipped", file=sys.stderr)
        return None
    torch.set_num_threads(threads)
    d, heads = x.shape[-1], params["heads"]
    layer = torch.nn.TransformerEncoderLayer(
        d, heads, 4 * d, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    )
    opt = torch.optim.Adam(layer.parameters(), 1e-3)
    xt, tt = torch.tensor(np.asarray(x)), torch.tensor(np.asarray(target))

    def run():
        opt.zero_grad()
        loss = torch.mean(torch.square(layer(xt) - tt))
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach())}

    losses = [run()["loss"] for _ in range(3)]
    return run, losses, sum(p.numel() for p in layer.parameters())


def compile_seconds(model, x, rounds: int) -> float:
    """The median time of lowering and compiling ``jax.grad`` of a sum over ``model``."""
    _, params, state = model.init(jax.random.key(0), x.shape)

    def loss(p):
        return jnp.sum(model.apply(p, state, x, train=True)[0])

    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        jax.jit(jax.grad(loss)).lower(params).compile()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=os.path.join(os.path.dirname(__file__), "out", "transformer.json")
    )
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--compile-rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script")
    args = parser.parse_args()
    if args.smoke:
        args.d_model, args.heads, args.seq, args.batch = 16, 2, 8, 2
        args.rounds, args.calls, args.depth, args.compile_rounds = 1, 1, 2, 1

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(args.batch, args.seq, args.d_model)).astype(np.float32))
    target = jnp.asarray(rng.normal(size=x.shape).astype(np.float32))
    block = jn.TransformerBlock(args.heads, 4 * args.d_model)
    _, block_params, _ = block.init(jax.random.key(0), x.shape)
    # each column gets its own copy: the jitted steps donate their inputs
    params = {"heads": args.heads, "block": jax.tree.map(jnp.copy, block_params)}
    count = sum(a.size for a in jax.tree.leaves(block_params))

    candidates, losses = {}, {}
    candidates["jaxnets"], losses["jaxnets"] = jaxnets_step(params, x, target)
    candidates["raw_jax"], losses["raw_jax"] = raw_jax_step(
        jax.tree.map(jnp.copy, block_params), x, target
    )
    torch_col = torch_step(params, x, target, args.threads)
    if torch_col is not None:
        candidates["torch"], losses["torch"], torch_count = torch_col
        assert torch_count == count, f"torch has {torch_count} params, jaxnets {count}"
    for name, ls in losses.items():
        assert ls[-1] < ls[0], f"{name}: the loss did not fall: {ls}"
    timings = harness.time_interleaved(
        candidates, rounds=args.rounds, calls_per_round=args.calls, rotate=True
    )
    payload = {
        "config": vars(args),
        "params": count,
        "timings": timings,
        "ratio_jaxnets_over_raw_jax": timings["jaxnets"]["median_s"]
        / timings["raw_jax"]["median_s"],
        "load_average": os.getloadavg(),
        "environment": harness.environment(),
    }
    if "torch" in timings:
        payload["ratio_jaxnets_over_torch"] = (
            timings["jaxnets"]["median_s"] / timings["torch"]["median_s"]
        )
    repeated = compile_seconds(jn.repeat(block, args.depth), x, args.compile_rounds)
    unrolled = compile_seconds(jn.serial(*[block] * args.depth), x, args.compile_rounds)
    payload["compile"] = {
        "depth": args.depth,
        "repeat_s": repeated,
        "unrolled_s": unrolled,
        "unrolled_over_repeat": unrolled / repeated,
    }
    harness.write_json(args.out, payload)


if __name__ == "__main__":
    main()
