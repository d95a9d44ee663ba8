"""Compile time and step time: 24 identical residual MLP blocks, scanned vs unrolled.

A block is the pre-norm residual MLP of transformers and MLP-Mixer,
``x + Dense(width)(Gelu(Dense(hidden)(LayerNorm(x))))``. The scanned network is
``jn.repeat(block, 24)`` (its default: the loop body rematerialised by a ``custom_vjp`` of
two while loops that share kernels), also with ``policy=nothing_saveable`` (the same
memory use as a ``lax.scan`` of ``jax.checkpoint``, the previous default) and with
``remat=False`` (every intermediate saved); the unrolled one is ``jn.serial`` of 24 copies
of the block holding the same weights (sliced from the stacked params). All compile the
same training computation (loss, ``jax.grad``, an SGD update); the script checks that
outputs and gradients agree, then times compilation (a fresh ``jax.jit`` each time:
tracing and lowering, then XLA's compile, as wall time and as this process's CPU time;
interleaved rounds, persistent cache off) and the compiled step
(``harness.time_interleaved``). It also counts fusions and loops in the optimised HLO.
Writes ``benchmarks/out/scan_compile.json``.

Run: ``.venv/bin/python benchmarks/bench_scan_compile.py [--depth 24] [--width 256]``
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness

import jaxnets as jn

SCANS = ("scan", "scan_checkpoint", "scan_saved")


def block(width: int, hidden: int) -> jn.Layer:
    return jn.residual(jn.serial(jn.LayerNorm(), jn.Dense(hidden), jn.Gelu(), jn.Dense(width)))


def train_fn(model: jn.Layer):
    def step(params, x, y):
        def loss(p):
            out = model.apply(p, {}, x, train=True)[0]
            return jnp.mean((out - y) ** 2)

        value, grads = jax.value_and_grad(loss)(params)
        return value, jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads), grads

    return step


def compile_seconds(model: jn.Layer, params, x, y) -> tuple[float, float, float]:
    """Seconds to trace and lower a new jitted step, seconds for XLA to compile it, and
    the CPU seconds of this process during XLA's compile (less sensitive to other jobs
    on the machine than wall time; XLA compiles kernels on several threads)."""
    fn = jax.jit(train_fn(model))  # a new function object: nothing cached in memory
    start = time.perf_counter()
    lowered = fn.lower(params, x, y)
    middle, cpu = time.perf_counter(), time.process_time()
    lowered.compile()
    return middle - start, time.perf_counter() - middle, time.process_time() - cpu


def hlo_counts(model: jn.Layer, params, x, y) -> dict[str, int]:
    """Instructions, fusions and while loops in the optimised HLO of the training step."""
    text = jax.jit(train_fn(model)).lower(params, x, y).compile().as_text()
    return {
        "instructions": len(re.findall(r"^\s*(?:ROOT )?%\S+ = ", text, flags=re.M)),
        "fusions": len(re.findall(r"[\]})] fusion\(", text)),
        "while_loops": len(re.findall(r"[\]})] while\(", text)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=24)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--hidden", type=int, help="the block's hidden width (default: width)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--compile-rounds", type=int, default=9)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)

    depth, width, hidden = args.depth, args.width, args.hidden or args.width
    scanned = jn.repeat(block(width, hidden), depth)
    scanned_saved = jn.repeat(block(width, hidden), depth, remat=False)
    nothing = jax.checkpoint_policies.nothing_saveable
    scanned_ckpt = jn.repeat(block(width, hidden), depth, policy=nothing)
    unrolled = jn.serial(*[block(width, hidden) for _ in range(depth)])
    _, stacked, _ = scanned.init(jax.random.key(0), (args.batch, width))
    per_layer = {f"residual_{i}": jax.tree.map(lambda a, i=i: a[i], stacked) for i in range(depth)}
    x = jax.random.normal(jax.random.key(1), (args.batch, width))
    y = jax.random.normal(jax.random.key(2), (args.batch, width))

    # Same outputs and gradients.
    scan_step, loop_step = jax.jit(train_fn(scanned)), jax.jit(train_fn(unrolled))
    saved_step = jax.jit(train_fn(scanned_saved))
    ckpt_step = jax.jit(train_fn(scanned_ckpt))
    loss_s, _, grads_s = scan_step(stacked, x, y)
    loss_r, _, grads_r = saved_step(stacked, x, y)
    loss_c, _, grads_c = ckpt_step(stacked, x, y)
    loss_u, _, grads_u = loop_step(per_layer, x, y)
    restacked = jax.tree.map(lambda *a: jnp.stack(a), *[grads_u[k] for k in per_layer])
    out_s = scanned.apply(stacked, {}, x, train=False)[0]
    out_u = unrolled.apply(per_layer, {}, x, train=False)[0]
    out_r = scanned_saved.apply(stacked, {}, x, train=False)[0]
    out_c = scanned_ckpt.apply(stacked, {}, x, train=False)[0]
    max_out_diff = max(float(jnp.max(jnp.abs(o - out_u))) for o in (out_s, out_r, out_c))
    max_grad_rel = max(
        float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30))
        for g in (grads_s, grads_r, grads_c)
        for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(restacked), strict=True)
    )
    np.testing.assert_allclose(out_s, out_u, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out_r, out_u, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out_c, out_u, rtol=1e-5, atol=1e-5)
    assert max_grad_rel < 1e-4, max_grad_rel

    # Compile time: interleaved rounds, medians.
    samples: dict[str, dict[str, list[float]]] = {
        name: {"lower_s": [], "xla_compile_s": [], "total_s": [], "xla_compile_cpu_s": []}
        for name in ("unrolled", "scan", "scan_checkpoint", "scan_saved")
    }
    candidates = (
        ("unrolled", unrolled, per_layer),
        ("scan", scanned, stacked),
        ("scan_checkpoint", scanned_ckpt, stacked),
        ("scan_saved", scanned_saved, stacked),
    )
    hlo = {name: hlo_counts(model, params, x, y) for name, model, params in candidates}
    for _ in range(args.compile_rounds):
        for name, model, params in candidates:
            lower, xla, cpu = compile_seconds(model, params, x, y)
            samples[name]["lower_s"].append(lower)
            samples[name]["xla_compile_s"].append(xla)
            samples[name]["total_s"].append(lower + xla)
            samples[name]["xla_compile_cpu_s"].append(cpu)
    compile_stats = {
        name: {f"median_{k}": statistics.median(v) for k, v in parts.items()}
        | {f"min_{k}": min(v) for k, v in parts.items()}
        | {"samples": parts}
        for name, parts in samples.items()
    }

    def speedup(part: str, name: str, stat: str = "median") -> float:
        key = f"{stat}_{part}"
        return compile_stats["unrolled"][key] / compile_stats[name][key]

    # Step time of the compiled training step.
    steps = harness.time_interleaved(
        {
            "unrolled": lambda: loop_step(per_layer, x, y)[0],
            "scan": lambda: scan_step(stacked, x, y)[0],
            "scan_checkpoint": lambda: ckpt_step(stacked, x, y)[0],
            "scan_saved": lambda: saved_step(stacked, x, y)[0],
        },
        rounds=15,
        calls_per_round=10,
    )
    payload = {
        "benchmark": "scan_compile",
        "config": {
            "depth": depth,
            "width": width,
            "hidden": hidden,
            "batch": args.batch,
            "dtype": "float32",
            "block": "x + Dense(width)(Gelu(Dense(hidden)(LayerNorm(x))))",
        },
        "environment": harness.environment(),
        "equivalence": {
            "loss_scan": float(loss_s),
            "loss_unrolled": float(loss_u),
            "loss_scan_saved": float(loss_r),
            "loss_scan_checkpoint": float(loss_c),
            "max_abs_output_diff": max_out_diff,
            "max_rel_grad_diff": max_grad_rel,
        },
        "compile": compile_stats,
        "compile_speedup_total": {n: speedup("total_s", n) for n in SCANS},
        "compile_speedup_total_min": {n: speedup("total_s", n, "min") for n in SCANS},
        "compile_speedup_xla_only": {n: speedup("xla_compile_s", n) for n in SCANS},
        "compile_speedup_xla_cpu": {n: speedup("xla_compile_cpu_s", n) for n in SCANS},
        "optimised_hlo": hlo,
        "step": steps,
        "step_time_ratio_over_unrolled": harness.ratios(steps, "unrolled"),
        "load_average": list(os.getloadavg()),
        "note": "CPU shared with other jobs; medians of interleaved rounds",
    }
    harness.write_json(os.path.join(args.out, "scan_compile.json"), payload)


if __name__ == "__main__":
    main()
