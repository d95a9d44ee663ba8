"""The CPU training form of BatchNorm equals the plain one
(``norm._batch_norm``, closed-form derivative with the affine map inside) in values, new
statistics, gradients (input, scale, bias) and forward-mode derivatives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets._impl.batch_norm import closed_form
from jaxnets.layers import norm


def _both_forms(make, params, state, x, w):
    """``(loss, new_state, grads (params, x), jvp along w)`` of the layer ``make(impl)``
    with the closed-form implementation and with the reference."""

    def run(layer, params, x):
        y, new_state = layer.apply(params, state, x, train=True)
        return jnp.sum(jnp.sin(y.astype(jnp.float32)) * w), new_state

    results = {}
    for impl in ("closed_form", "reference"):
        layer = make(impl)
        (value, new_state), grads = jax.value_and_grad(
            lambda p, x, layer=layer: run(layer, p, x), argnums=(0, 1), has_aux=True
        )(params, x)
        tangent = jax.jvp(
            lambda x, layer=layer: run(layer, params, x)[0], (x,), (w.astype(x.dtype),)
        )[1]
        results[impl] = (value, new_state, grads, tangent)
    return results["closed_form"], results["reference"]


def _assert_close(fast, plain, rtol):
    for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(plain), strict=True):
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(np.max(np.abs(b)) + 1e-30))


@pytest.mark.parametrize(
    "use_scale, use_bias", [(True, True), (False, True), (True, False), (False, False)]
)
@pytest.mark.parametrize("shape", [(16, 6, 6, 5), (32, 3)])
def test_batchnorm_cpu_form_affine_variants(shape, use_scale, use_bias):
    def make(impl="auto"):
        return jn.BatchNorm(momentum=0.8, use_scale=use_scale, use_bias=use_bias, impl=impl)

    layer = make()
    _, params, state = layer.init(jax.random.key(0), shape)
    features = shape[-1]
    if use_scale:
        params["scale"] = jnp.linspace(-1.5, 2.0, features)  # a negative scale too
    if use_bias:
        params["bias"] = jnp.linspace(-1.0, 1.0, features)
    x = 2.0 * jax.random.normal(jax.random.key(1), shape) - 0.5
    w = jax.random.normal(jax.random.key(2), shape)
    fast, plain = _both_forms(make, params, state, x, w)
    _assert_close(fast, plain, 2e-5)
    assert jax.tree.structure(fast[2]) == jax.tree.structure(plain[2])


def test_batchnorm_cpu_form_large_mean():
    """Features far from zero mean (the form subtracts the mean before scaling)."""

    def make(impl="auto"):
        return jn.BatchNorm(impl=impl)

    layer = make()
    shape = (64, 4, 4, 8)
    _, params, state = layer.init(jax.random.key(0), shape)
    x = jax.random.normal(jax.random.key(1), shape) + jnp.linspace(-50.0, 50.0, 8).reshape(
        1, 1, 1, 8
    )
    w = jax.random.normal(jax.random.key(2), shape)
    fast, plain = _both_forms(make, params, state, x, w)
    _assert_close(fast, plain, 1e-4)


def test_batchnorm_cpu_form_bfloat16():
    """bfloat16 inputs: statistics in float32, output in bfloat16, like the plain form."""
    layer = jn.BatchNorm()
    shape = (32, 4, 4, 6)
    _, params, state = layer.init(jax.random.key(0), shape)
    x = jax.random.normal(jax.random.key(1), shape).astype(jnp.bfloat16)
    y_fast, _ = jn.BatchNorm(impl="closed_form").apply(params, state, x, train=True)
    y_plain, _ = jn.BatchNorm(impl="reference").apply(params, state, x, train=True)
    assert y_fast.dtype == y_plain.dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.asarray(y_fast, np.float32), np.asarray(y_plain, np.float32), rtol=1e-2, atol=1e-2
    )


def test_batch_norm_second_derivative():
    """The closed-form derivative is itself differentiable (a Hessian-vector product)."""
    x = jax.random.normal(jax.random.key(0), (12, 3))
    scale, bias = jnp.array([0.5, 1.0, 2.0]), jnp.array([0.1, -0.2, 0.3])
    w = jax.random.normal(jax.random.key(1), x.shape)

    def loss(fn, x):
        return jnp.sum(jnp.tanh(fn(x, scale, bias, (0,), 1e-5)[0]) * w)

    hvp = jax.jvp(jax.grad(lambda x: loss(closed_form, x)), (x,), (w,))[1]
    hvp_plain = jax.jvp(jax.grad(lambda x: loss(norm._batch_norm, x)), (x,), (w,))[1]
    np.testing.assert_allclose(hvp, hvp_plain, rtol=1e-4, atol=1e-4)
