"""The CPU formulations (tiled MaxPool, closed-form BatchNorm derivative) equal the plain
ones in values and gradients; the CPU helpers in ``jaxnets.cpu``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets import cpu
from jaxnets.layers import pool


def _plain_max_pool(x, size):
    window = (1, *size, 1)
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, window, "VALID")


@pytest.mark.parametrize(
    "shape, size",
    [
        ((2, 8, 8, 4), (2, 2)),
        ((2, 7, 9, 3), (2, 3)),  # remainders dropped, as VALID does
        ((3, 10, 5), (3,)),
        ((2, 4, 6, 4, 2), (2, 3, 2)),
    ],
)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_tiled_max_equals_reduce_window_with_ties(shape, size, dtype):
    x = jax.random.normal(jax.random.key(0), shape)
    x = (jnp.round(x * 2) / 2).astype(dtype)  # coarse values: many ties in a window
    fast, plain = pool._tiled_max(x, size), _plain_max_pool(x, size)
    assert fast.dtype == plain.dtype
    np.testing.assert_array_equal(np.asarray(fast, np.float32), np.asarray(plain, np.float32))
    g = jax.random.normal(jax.random.key(1), plain.shape).astype(dtype)
    grad_fast = jax.grad(lambda x: jnp.sum(pool._tiled_max(x, size) * g).astype(jnp.float32))(x)
    grad_plain = jax.grad(lambda x: jnp.sum(_plain_max_pool(x, size) * g).astype(jnp.float32))(x)
    # the same element of each window (the first maximum) receives the gradient
    np.testing.assert_array_equal(
        np.asarray(grad_fast, np.float32), np.asarray(grad_plain, np.float32)
    )


def test_tiled_max_propagates_nan():
    x = jnp.array([1.0, jnp.nan, 0.0, 2.0, 3.0, 1.0, -1.0, 0.0]).reshape(1, 2, 4, 1)
    y = pool._tiled_max(x, (2, 2))
    assert bool(jnp.isnan(y[0, 0, 0, 0])) and float(y[0, 0, 1, 0]) == 2.0


def _uses_reduce_window(layer, shape):
    _, params, state = layer.init(jax.random.key(0), shape)
    jaxpr = jax.make_jaxpr(lambda x: layer.apply(params, state, x, train=True)[0])(jnp.ones(shape))
    return "reduce_window" in str(jaxpr)


@pytest.mark.parametrize(
    "make, shape, tiled",
    [
        (lambda: jn.MaxPool(2), (2, 8, 8, 3), True),
        (lambda: jn.MaxPool((2, 3)), (2, 7, 8, 3), True),
        (lambda: jn.MaxPool(2, padding="SAME"), (2, 8, 8, 3), True),  # no padding needed
        (lambda: jn.MaxPool(2, padding="SAME"), (2, 7, 7, 3), False),  # padded
        (lambda: jn.MaxPool(3, strides=2), (2, 9, 9, 3), False),  # overlapping windows
    ],
)
def test_maxpool_picks_tiled_form_on_cpu_only(monkeypatch, make, shape, tiled):
    layer = make()
    x = jax.random.normal(jax.random.key(2), shape)
    _, params, state = layer.init(jax.random.key(0), shape)

    def run(x):
        return jnp.sum(jnp.sin(layer.apply(params, state, x, train=True)[0]))

    monkeypatch.setattr(cpu, "on_cpu", lambda: True)
    y_cpu, g_cpu = jax.value_and_grad(run)(x)
    assert _uses_reduce_window(make(), shape) is not tiled
    monkeypatch.setattr(cpu, "on_cpu", lambda: False)
    y_plain, g_plain = jax.value_and_grad(run)(x)
    assert _uses_reduce_window(make(), shape)
    np.testing.assert_allclose(y_cpu, y_plain, rtol=1e-6)
    np.testing.assert_array_equal(g_cpu, g_plain)


@pytest.mark.parametrize("shape", [(8, 5, 5, 6), (16, 4), (4, 3, 7, 2, 5)])
def test_batchnorm_cpu_form_equals_plain(monkeypatch, shape):
    layer = jn.BatchNorm(momentum=0.9)
    _, _, state = layer.init(jax.random.key(0), shape)
    features = shape[-1]
    params = {"scale": jnp.linspace(0.5, 2.0, features), "bias": jnp.linspace(-1.0, 1.0, features)}
    x = 3.0 * jax.random.normal(jax.random.key(1), shape) + 1.0
    w = jax.random.normal(jax.random.key(2), shape)

    def run(params, x):
        y, new_state = layer.apply(params, state, x, train=True)
        return jnp.sum(jnp.sin(y) * w), new_state

    results = {}
    for on in (True, False):
        monkeypatch.setattr(cpu, "on_cpu", lambda on=on: on)
        (value, new_state), grads = jax.value_and_grad(run, argnums=(0, 1), has_aux=True)(params, x)
        tangent = jax.jvp(lambda x: run(params, x)[0], (x,), (w,))[1]  # forward mode works
        results[on] = (value, new_state, grads, tangent)
    fast, plain = results[True], results[False]
    np.testing.assert_allclose(fast[0], plain[0], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(fast[1:]), jax.tree.leaves(plain[1:]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(b))))


def test_batchnorm_cpu_form_constant_feature(monkeypatch):
    """A feature with zero variance: finite gradients, equal to the plain formulation's."""
    layer = jn.BatchNorm()
    x = jnp.stack([jnp.arange(6.0), jnp.full(6, 2.0)], axis=-1)
    _, params, state = layer.init(jax.random.key(0), x.shape)

    def loss(x):
        return jnp.sum(jnp.cos(layer.apply(params, state, x, train=True)[0]))

    monkeypatch.setattr(cpu, "on_cpu", lambda: True)
    fast = jax.grad(loss)(x)
    monkeypatch.setattr(cpu, "on_cpu", lambda: False)
    plain = jax.grad(loss)(x)
    assert bool(jnp.all(jnp.isfinite(fast)))
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-6)


def test_with_hugepages_keeps_other_tunables():
    env = cpu.with_hugepages({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0:glibc.malloc.arena_max=2"})
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert cpu.hugepages_enabled(env) and not cpu.hugepages_enabled({})
    assert cpu.with_hugepages({})["GLIBC_TUNABLES"] == cpu.HUGEPAGE_TUNABLE


def test_transparent_hugepage_mode(tmp_path):
    path = tmp_path / "enabled"
    path.write_text("always [madvise] never\n")
    assert cpu.transparent_hugepage_mode(str(path)) == "madvise"
    assert cpu.transparent_hugepage_mode(str(tmp_path / "missing")) is None


def test_reexec_only_when_needed(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu.os, "execve", lambda *a: calls.append(a))
    monkeypatch.setattr(cpu, "transparent_hugepage_mode", lambda: "madvise")
    monkeypatch.setattr(cpu.sys, "platform", "linux")
    monkeypatch.setenv("GLIBC_TUNABLES", cpu.HUGEPAGE_TUNABLE)
    cpu.reexec_with_hugepages(["-m", "jaxnets"])
    assert calls == []
    monkeypatch.setenv("GLIBC_TUNABLES", "")
    monkeypatch.setenv("JAXNETS_NO_HUGEPAGES", "1")
    cpu.reexec_with_hugepages(["-m", "jaxnets"])
    assert calls == []
    monkeypatch.delenv("JAXNETS_NO_HUGEPAGES")
    cpu.reexec_with_hugepages(["-m", "jaxnets", "train"])
    ((exe, argv, env),) = calls
    assert argv[1:] == ["-m", "jaxnets", "train"]
    assert env["GLIBC_TUNABLES"] == cpu.HUGEPAGE_TUNABLE


# ----------------------------------------------------------------- compiler options


def _small_cnn(width=4):
    return jn.serial(
        jn.Conv(width, (3, 3)), jn.Relu(), jn.MaxPool((2, 2)), jn.Flatten(), jn.Dense(3)
    )


def _cnn_batch(channels=2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 8, 8, channels)).astype(np.float32)
    return x, rng.integers(0, 3, 8).astype(np.int32)


def test_compiler_options_only_for_convolutions_on_several_cores(monkeypatch):
    monkeypatch.setattr(cpu, "on_cpu", lambda: True)
    monkeypatch.setattr(cpu, "usable_cores", lambda: 2)
    x, _ = _cnn_batch()
    _, params, state = jn.init_model(_small_cnn(), jax.random.key(0), x.shape)

    def run(model, params, x):
        return model.apply(params, state, x, train=False)[0]

    assert cpu.compiler_options(lambda p, x: run(_small_cnn(), p, x), params, x) == (
        cpu.CONVOLUTIONS_ON_EIGEN
    )
    normalised = jn.serial(jn.Conv(4, (3, 3)), jn.BatchNorm(), jn.Relu())
    _, bn_params, bn_state = jn.init_model(normalised, jax.random.key(0), x.shape)

    def bn_loss(p, x):
        return jnp.sum(normalised.apply(p, bn_state, x, train=True)[0])

    assert cpu.compiler_options(jax.grad(bn_loss), bn_params, x) == (
        cpu.CONVOLUTIONS_ON_EIGEN_NORMALISED
    )
    # found inside loops too
    scanned = lambda x: jax.lax.scan(lambda c, _: (jnp.tanh(c), None), x, length=2)[0]  # noqa: E731
    assert cpu.compiler_options(scanned, x) == {}
    conv_in_scan = lambda w, x: jax.lax.scan(  # noqa: E731
        lambda c, _: (jax.lax.conv(c, w, (1, 1), "SAME"), None), x, length=2
    )[0]
    w = np.ones((2, 2, 3, 3), np.float32)
    assert cpu.compiler_options(conv_in_scan, w, np.ones((1, 2, 5, 5), np.float32)) == (
        cpu.CONVOLUTIONS_ON_EIGEN
    )
    monkeypatch.setattr(cpu, "usable_cores", lambda: 1)
    assert cpu.compiler_options(conv_in_scan, w, np.ones((1, 2, 5, 5), np.float32)) == {}


def test_steps_compile_with_the_chosen_options(monkeypatch):
    import optax

    monkeypatch.setattr(cpu, "usable_cores", lambda: 2)
    seen = []
    real_jit = jax.jit

    def spy(fn, **kwargs):
        seen.append(kwargs.get("compiler_options"))
        return real_jit(fn, **kwargs)

    monkeypatch.setattr(cpu.jax, "jit", spy)
    model, opt = _small_cnn(), optax.adam(1e-2)
    x, y = _cnn_batch()
    expected = cpu.CONVOLUTIONS_ON_EIGEN if cpu.on_cpu() else None
    for options, wanted in (
        (None, expected),
        ({}, None),
        ({"xla_cpu_enable_fast_math": False}, {"xla_cpu_enable_fast_math": False}),
    ):
        seen.clear()
        step = jn.make_train_step(model, "softmax_cross_entropy", opt, compiler_options=options)
        ts, _ = step(jn.create_train_state(model, opt, x.shape), (x, y))
        jn.make_eval_step(model, "softmax_cross_entropy", compiler_options=options)(
            ts, (x, y, np.ones(8, np.float32))
        )
        jn.make_predict(model, compiler_options=options)(ts.params, ts.state, x)
        assert seen == [wanted] * 3, (options, seen)
    # the train step looks at the model's operations: RMSprop's rsqrt is no normalisation
    seen.clear()
    rmsprop = optax.rmsprop(1e-3)
    step = jn.make_train_step(model, "softmax_cross_entropy", rmsprop)
    step(jn.create_train_state(model, rmsprop, x.shape), (x, y))
    assert seen == [expected]


@pytest.mark.skipif(not cpu.on_cpu() or cpu.usable_cores() < 2, reason="needs 2 CPU cores")
def test_train_step_with_convolutions_on_eigen_equals_xla_defaults():
    import optax

    model, opt = _small_cnn(16), optax.adam(1e-2)
    batch = _cnn_batch(16)
    tuned = jn.make_train_step(model, "softmax_cross_entropy", opt)
    plain = jn.make_train_step(model, "softmax_cross_entropy", opt, compiler_options={})
    ts_a = jn.create_train_state(model, opt, batch[0].shape)
    ts_b = jn.create_train_state(model, opt, batch[0].shape)
    for _ in range(3):
        ts_a, m_a = tuned(ts_a, batch)
        ts_b, m_b = plain(ts_b, batch)
        np.testing.assert_allclose(m_a["loss"], m_b["loss"], rtol=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
        ts_a.params,
        ts_b.params,
    )
    eval_tuned = jn.make_eval_step(model, "softmax_cross_entropy")
    eval_plain = jn.make_eval_step(model, "softmax_cross_entropy", compiler_options={})
    full = (*batch, np.ones(8, np.float32))
    np.testing.assert_allclose(
        eval_tuned(ts_a, full)["loss"], eval_plain(ts_a, full)["loss"], rtol=1e-5
    )
