"""jaxnets train step vs a hand-written raw-JAX step with the same math, for two CNNs.

Usage: python benchmarks/bench_cnn.py [--out benchmarks/out/cnn.json] [--rounds 10]

* ``lenet_style_b128``: 28x28x1 inputs, batch 128: conv 5x5x32 (SAME, ReLU), 2x2 max
  pool, conv 5x5x64 (SAME, ReLU), 2x2 max pool, dense 256 (ReLU), dense 10.
* ``cifar_resnet20_b64``: 32x32x3 inputs, batch 64: the CIFAR ResNet-20 of He et al.
  (2016) with BatchNorm (batch statistics and moving averages) and option-A shortcuts.

Both sides: ``jax.lax.conv_general_dilated`` (NHWC, HWIO), ``lax.reduce_window`` pools,
mean softmax cross-entropy with integer labels, accuracy, ``jax.value_and_grad``, optax
adam, one jitted step with the training state donated. The jaxnets side is
``jaxnets.make_train_step``; parameter counts are asserted equal. Steps are timed
interleaved on the same batch; the JSON gives medians and the ratio jaxnets / raw JAX.
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

DIMS = ("NHWC", "HWIO", "NHWC")


# --------------------------------------------------------------------------- raw JAX


def conv(x, w, strides=1, padding="SAME"):
    return jax.lax.conv_general_dilated(x, w, (strides, strides), padding, dimension_numbers=DIMS)


def max_pool(x, k=2):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, k, k, 1), (1, k, k, 1), "VALID")


def batch_norm(x, p, s, momentum=0.9, eps=1e-5):
    """Training-mode BatchNorm: batch statistics, moving averages updated."""
    mean = jnp.mean(x, axis=(0, 1, 2))
    var = jnp.maximum(jnp.mean(jnp.square(x), axis=(0, 1, 2)) - jnp.square(mean), 0.0)
    y = (x - mean) * jax.lax.rsqrt(var + eps) * p["scale"] + p["bias"]
    new_s = {
        "mean": momentum * s["mean"] + (1 - momentum) * mean,
        "var": momentum * s["var"] + (1 - momentum) * var,
    }
    return y, new_s


def lenet_raw(key, in_shape, classes):
    """Init and forward of the LeNet-style CNN; params ``{"c1", "c2", "d1", "d2"}``."""
    glorot = jax.nn.initializers.glorot_uniform()
    keys = jax.random.split(key, 4)
    h, w, c = in_shape
    flat = (h // 4) * (w // 4) * 64
    params = {
        "c1": {"w": glorot(keys[0], (5, 5, c, 32)), "b": jnp.zeros(32)},
        "c2": {"w": glorot(keys[1], (5, 5, 32, 64)), "b": jnp.zeros(64)},
        "d1": {"w": glorot(keys[2], (flat, 256)), "b": jnp.zeros(256)},
        "d2": {"w": glorot(keys[3], (256, classes)), "b": jnp.zeros(classes)},
    }

    def forward(p, s, x):
        x = max_pool(jax.nn.relu(conv(x, p["c1"]["w"]) + p["c1"]["b"]))
        x = max_pool(jax.nn.relu(conv(x, p["c2"]["w"]) + p["c2"]["b"]))
        x = x.reshape(x.shape[0], -1)
        x = jax.nn.relu(x @ p["d1"]["w"] + p["d1"]["b"])
        return x @ p["d2"]["w"] + p["d2"]["b"], s

    return params, {}, forward


def resnet20_raw(key, in_shape, classes):
    """Init and forward of CIFAR ResNet-20 (3 stages of 3 basic blocks, 16/32/64 wide)."""
    he = jax.nn.initializers.he_normal()
    counter = iter(range(1000))

    def conv_bn(cin, cout):
        p = {"w": he(jax.random.fold_in(key, next(counter)), (3, 3, cin, cout))}
        p["bn"] = {"scale": jnp.ones(cout), "bias": jnp.zeros(cout)}
        return p, {"mean": jnp.zeros(cout), "var": jnp.ones(cout)}

    params, state = {}, {}
    params["stem"], state["stem"] = conv_bn(in_shape[-1], 16)
    layout = []  # (name, cin, cout, strides)
    cin = 16
    for stage, width in enumerate((16, 32, 64)):
        for block in range(3):
            strides = 2 if block == 0 and stage > 0 else 1
            name = f"s{stage}b{block}"
            layout.append((name, cin, width, strides))
            (p1, s1), (p2, s2) = conv_bn(cin, width), conv_bn(width, width)
            params[name], state[name] = {"a": p1, "b": p2}, {"a": s1, "b": s2}
            cin = width
    params["fc"] = {
        "w": jax.nn.initializers.glorot_uniform()(jax.random.fold_in(key, 999), (64, classes)),
        "b": jnp.zeros(classes),
    }

    def unit(p, s, x, strides, relu=True):
        pad = ((1, 1), (1, 1))
        y, new_s = batch_norm(conv(x, p["w"], strides, pad), p["bn"], s)
        return (jax.nn.relu(y) if relu else y), new_s

    def forward(p, s, x):
        new = {}
        x, new["stem"] = unit(p["stem"], s["stem"], x, 1)
        for name, c_in, c_out, strides in layout:
            y, sa = unit(p[name]["a"], s[name]["a"], x, strides)
            y, sb = unit(p[name]["b"], s[name]["b"], y, 1, relu=False)
            new[name] = {"a": sa, "b": sb}
            if strides != 1 or c_in != c_out:  # option A: subsample, zero-pad channels
                x = jnp.pad(x[:, ::strides, ::strides], ((0, 0), (0, 0), (0, 0), (0, c_out - c_in)))
            x = jax.nn.relu(y + x)
        x = jnp.mean(x, axis=(1, 2))
        return x @ p["fc"]["w"] + p["fc"]["b"], new

    return params, state, forward


def raw_train_step(forward, optimizer):
    def step(carry, batch):
        params, state, opt_state = carry
        x, y = batch

        def loss_fn(p):
            logits, new_state = forward(p, state, x)
            loss = optax.losses.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, (logits, new_state)

        (loss, (logits, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        accuracy = jnp.mean((jnp.argmax(logits, -1) == y).astype(jnp.float32))
        return (params, new_state, opt_state), {"loss": loss, "accuracy": accuracy}

    return jax.jit(step, donate_argnums=(0,))


# --------------------------------------------------------------------------- jaxnets


def lenet_jaxnets(classes):
    return jn.serial(
        jn.Conv(32, 5, activation="relu"),
        jn.MaxPool(2),
        jn.Conv(64, 5, activation="relu"),
        jn.MaxPool(2),
        jn.Flatten(),
        jn.Dense(256, activation="relu"),
        jn.Dense(classes),
    )


#: name -> (jaxnets model, raw-JAX model, batch, input shape, steps per timing round)
CONFIGS = {
    "lenet_style_b128": (lenet_jaxnets, lenet_raw, 128, (28, 28, 1), 3),
    "cifar_resnet20_b64": (jn.models.resnet20, resnet20_raw, 64, (32, 32, 3), 2),
}


def compiled_flops(step, carry, batch) -> float | None:
    """XLA's FLOP count of the compiled step (the same math gives the same count)."""
    cost = step.lower(carry, batch).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) if cost and "flops" in cost else None


def bench_config(make_jn, make_raw, batch, in_shape, rounds, calls):
    classes = 10
    optimizer = optax.adam(1e-3)
    rng = np.random.default_rng(0)
    x = jax.device_put(rng.normal(size=(batch, *in_shape)).astype(np.float32))
    y = jax.device_put(rng.integers(0, classes, batch).astype(np.int32))

    model = make_jn(classes)
    ts = jn.create_train_state(model, optimizer, x.shape)
    jn_step = jn.make_train_step(model, "softmax_cross_entropy", optimizer)

    raw_params, raw_state, forward = make_raw(jax.random.key(0), in_shape, classes)
    raw_step = raw_train_step(forward, optimizer)
    raw_carry = (raw_params, raw_state, optimizer.init(raw_params))
    counts = {
        "params": jn.count_params(ts.params),
        "state": jn.count_params(ts.state),
    }
    assert counts["params"] == jn.count_params(raw_params), (counts, jn.count_params(raw_params))
    assert counts["state"] == jn.count_params(raw_state), (counts, jn.count_params(raw_state))

    flops = {
        "jaxnets": compiled_flops(jn_step, ts, (x, y)),
        "raw_jax": compiled_flops(raw_step, raw_carry, (x, y)),
    }
    results = harness.time_interleaved(
        {
            "jaxnets": harness.stepper(jn_step, ts, (x, y)),
            "raw_jax": harness.stepper(raw_step, raw_carry, (x, y)),
        },
        rounds=rounds,
        calls_per_round=calls,
    )
    return {
        "batch": batch,
        "input_shape": list(in_shape),
        **counts,
        "compiled_flops": flops,
        "results": results,
        "ratio_jaxnets_over_raw": harness.ratios(results, "raw_jax")["jaxnets"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/out/cnn.json")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=None, help="steps per round (3 and 2)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names")
    args = parser.parse_args()
    payload = {"benchmark": "cnn_train_step", "environment": harness.environment(), "configs": {}}
    for name in args.configs.split(","):
        make_jn, make_raw, batch, in_shape, calls = CONFIGS[name]
        calls = args.calls or calls
        payload["configs"][name] = bench_config(
            make_jn, make_raw, batch, in_shape, args.rounds, calls
        )
        print(f"{name}: ratio {payload['configs'][name]['ratio_jaxnets_over_raw']:.3f}")
    harness.write_json(args.out, payload)


if __name__ == "__main__":
    main()
