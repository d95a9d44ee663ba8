"""The tiled max pool (``jaxnets._impl.max_pool.tiled``) equals ``lax.reduce_window``:
values, ties, NaN and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets._impl import record_choices
from jaxnets._impl.max_pool import tiled


def _tiled(x, size):
    return tiled(x, size, size, [(0, 0)] * len(size))


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
    fast, plain = _tiled(x, size), _plain_max_pool(x, size)
    assert fast.dtype == plain.dtype
    np.testing.assert_array_equal(np.asarray(fast, np.float32), np.asarray(plain, np.float32))
    g = jax.random.normal(jax.random.key(1), plain.shape).astype(dtype)
    grad_fast = jax.grad(lambda x: jnp.sum(_tiled(x, size) * g).astype(jnp.float32))(x)
    grad_plain = jax.grad(lambda x: jnp.sum(_plain_max_pool(x, size) * g).astype(jnp.float32))(x)
    # the same element of each window (the first maximum) receives the gradient
    np.testing.assert_array_equal(
        np.asarray(grad_fast, np.float32), np.asarray(grad_plain, np.float32)
    )


def test_tiled_max_propagates_nan():
    x = jnp.array([1.0, jnp.nan, 0.0, 2.0, 3.0, 1.0, -1.0, 0.0]).reshape(1, 2, 4, 1)
    y = _tiled(x, (2, 2))
    assert bool(jnp.isnan(y[0, 0, 0, 0])) and float(y[0, 0, 1, 0]) == 2.0


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="auto picks the tiled form on CPU")
@pytest.mark.parametrize(
    "args, shape, expected",
    [
        ((2, None, "VALID"), (2, 8, 8, 3), "tiled"),
        (((2, 3), None, "VALID"), (2, 7, 8, 3), "tiled"),
        ((2, None, "SAME"), (2, 8, 8, 3), "tiled"),  # no padding needed
        ((2, None, "SAME"), (2, 7, 7, 3), "reference"),  # padded
        ((3, 2, "VALID"), (2, 9, 9, 3), "reference"),  # overlapping windows
    ],
)
def test_maxpool_auto_takes_the_tiled_form_only_where_it_applies(args, shape, expected):
    size, strides, padding = args
    x = jax.random.normal(jax.random.key(2), shape)

    def value_and_grad(impl):
        layer = jn.MaxPool(size, strides=strides, padding=padding, impl=impl)
        _, params, state = layer.init(jax.random.key(0), shape)

        def run(x):
            return jnp.sum(jnp.sin(layer.apply(params, state, x, train=True)[0]))

        with record_choices() as choices:
            result = jax.value_and_grad(run)(x)
        return result, [c.impl for c in choices if c.op == "max_pool"]

    (y, g), chosen = value_and_grad("auto")
    (y_ref, g_ref), _ = value_and_grad("reference")
    assert chosen == [expected]
    np.testing.assert_allclose(y, y_ref, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(g), np.asarray(g_ref))
