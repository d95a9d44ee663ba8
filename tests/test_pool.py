"""Pooling and zero padding against flax's pooling functions and numpy loops, and the
errors on bad input."""

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def _run(layer, x):
    spec, _, _ = layer.init(jax.random.key(0), x.shape)
    y = layer.apply({}, {}, x, train=False)[0]
    assert y.shape == spec.shape
    return y


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _flax_strides(window, strides):
    """flax's pools stride 1 by default; Keras's (and ours) stride by the window."""
    return _pair(window) if strides is None else _pair(strides)


POOL_GRID = list(
    itertools.product(
        [3, (2, 3)],  # window
        [None, 1, (2, 1)],  # strides
        ["VALID", "SAME", ((1, 0), (1, 1))],  # padding
    )
)


@pytest.mark.parametrize("window,strides,padding", POOL_GRID)
def test_max_pool_equals_flax(window, strides, padding):
    x = _normal(1, (2, 7, 6, 3))
    expected = nn.max_pool(x, _pair(window), _flax_strides(window, strides), padding=padding)
    np.testing.assert_allclose(_run(jn.MaxPool(window, strides, padding), x), expected, **TOL)


@pytest.mark.parametrize("window,strides,padding", POOL_GRID)
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avg_pool_equals_flax(window, strides, padding, count_include_pad):
    x = _normal(2, (2, 7, 6, 3))
    expected = nn.avg_pool(
        x,
        _pair(window),
        _flax_strides(window, strides),
        padding=padding,
        count_include_pad=count_include_pad,
    )
    layer = jn.AvgPool(window, strides, padding, count_include_pad)
    np.testing.assert_allclose(_run(layer, x), expected, **TOL)


def _numpy_avg_pool(x, window, strides, pads, count_include_pad):
    """A direct loop over windows of the zero-padded input, counting real cells."""
    x = np.asarray(x, np.float64)
    real = np.pad(np.ones(x.shape[1:3]), pads)
    x = np.pad(x, ((0, 0), *pads, (0, 0)))
    (kh, kw), (sh, sw) = window, strides
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for i, j in itertools.product(range(oh), range(ow)):
        rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
        count = kh * kw if count_include_pad else real[rows, cols].sum()
        out[:, i, j] = x[:, rows, cols].sum(axis=(1, 2)) / count
    return out


@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avg_pool_padding_count_equals_a_numpy_loop(count_include_pad):
    x = _normal(3, (2, 5, 6, 2))
    pads = ((2, 1), (1, 2))
    layer = jn.AvgPool((3, 4), (2, 1), pads, count_include_pad=count_include_pad)
    expected = _numpy_avg_pool(x, (3, 4), (2, 1), pads, count_include_pad)
    np.testing.assert_allclose(_run(layer, x), expected, **TOL)


def test_avg_pool_same_corners_exclude_or_include_padding():
    x = jnp.ones((1, 4, 4, 1))
    keras_like = _run(jn.AvgPool(3, 1, "SAME"), x)
    np.testing.assert_allclose(keras_like, np.ones((1, 4, 4, 1)), **TOL)
    pytorch_like = _run(jn.AvgPool(3, 1, "SAME", count_include_pad=True), x)
    assert float(pytorch_like[0, 0, 0, 0]) == pytest.approx(4 / 9)
    assert float(pytorch_like[0, 1, 1, 0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "window,strides,padding,shape",
    [
        ((3,), None, "VALID", (2, 10, 3)),
        ((3,), 2, "SAME", (2, 10, 3)),
        ((2, 2, 2), None, "VALID", (2, 4, 5, 6, 2)),
        ((3, 2, 2), (1, 2, 1), "SAME", (2, 4, 5, 6, 2)),
    ],
)
def test_1d_and_3d_pools_equal_flax(window, strides, padding, shape):
    x = _normal(4, shape)
    flax_strides = window if strides is None else strides
    flax_strides = (strides,) * len(window) if isinstance(strides, int) else flax_strides
    np.testing.assert_allclose(
        _run(jn.MaxPool(window, strides, padding), x),
        nn.max_pool(x, window, flax_strides, padding=padding),
        **TOL,
    )
    np.testing.assert_allclose(
        _run(jn.AvgPool(window, strides, padding), x),
        nn.avg_pool(x, window, flax_strides, padding=padding, count_include_pad=False),
        **TOL,
    )


def test_max_pool_padding_never_wins():
    x = -jnp.ones((1, 3, 3, 1))
    y = _run(jn.MaxPool(2, 1, padding=1), x)
    np.testing.assert_array_equal(y, -np.ones((1, 4, 4, 1)))


def test_strides_default_to_the_window():
    spec, _, _ = jn.MaxPool((2, 3)).init(jax.random.key(0), (1, 8, 9, 2))
    assert spec.shape == (1, 4, 3, 2)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 4, 5, 3), (2, 2, 3, 4, 3)])
def test_global_pools(keepdims, shape):
    x = _normal(5, shape)
    axes = tuple(range(1, len(shape) - 1))
    np.testing.assert_allclose(
        _run(jn.GlobalAvgPool(keepdims), x), np.mean(x, axis=axes, keepdims=keepdims), **TOL
    )
    np.testing.assert_allclose(
        _run(jn.GlobalMaxPool(keepdims), x), np.max(x, axis=axes, keepdims=keepdims), **TOL
    )


def test_global_avg_pool_accumulates_bfloat16_in_float32():
    x = jnp.full((1, 64, 64, 1), 1.0 + 2.0**-7, jnp.bfloat16)
    y = _run(jn.GlobalAvgPool(), x)
    assert y.dtype == jnp.bfloat16
    assert float(y[0, 0]) == float(x[0, 0, 0, 0])


# --------------------------------------------------------------------------- ZeroPadding


@pytest.mark.parametrize(
    "padding,shape,widths",
    [
        (1, (2, 3, 4, 2), ((0, 0), (1, 1), (1, 1), (0, 0))),
        (2, (2, 3, 2), ((0, 0), (2, 2), (0, 0))),
        ((1, 2), (2, 3, 4, 2), ((0, 0), (1, 1), (2, 2), (0, 0))),
        (((0, 1), (2, 3)), (2, 3, 4, 2), ((0, 0), (0, 1), (2, 3), (0, 0))),
        (((1, 0), (0, 2), (1, 1)), (1, 2, 2, 2, 1), ((0, 0), (1, 0), (0, 2), (1, 1), (0, 0))),
    ],
)
def test_zero_padding_is_numpy_pad(padding, shape, widths):
    x = _normal(6, shape)
    np.testing.assert_array_equal(_run(jn.ZeroPadding(padding), x), np.pad(x, widths))


def test_zero_padding_errors():
    with pytest.raises(ValueError, match="ZeroPadding: padding must be non-negative"):
        jn.ZeroPadding(-1)
    with pytest.raises(ValueError, match="ZeroPadding: padding must be"):
        jn.ZeroPadding("SAME")
    with pytest.raises(
        jn.LayerError,
        match=r"ZeroPadding: expected a rank-4 input .* got shape "
        r"\(2, 3, 4\)",
    ):
        jn.ZeroPadding((1, 1)).init(jax.random.key(0), (2, 3, 4))
    with pytest.raises(jn.LayerError, match=r"ZeroPadding: expected an input .* rank >= 3"):
        jn.ZeroPadding(1).init(jax.random.key(0), (2, 3))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("make", [jn.MaxPool, jn.AvgPool])
def test_window_larger_than_input_at_init_and_apply(make):
    layer = make(3)
    kind = layer.kind
    with pytest.raises(
        jn.LayerError,
        match=rf"{kind}: .*\(2, 5\) .*\(1, 2, 5, 1\).*smaller than the window \(3, 3\)",
    ):
        layer.init(jax.random.key(0), (1, 2, 5, 1))
    with pytest.raises(jn.LayerError, match=rf"{kind}: .*smaller than the window"):
        layer.apply({}, {}, jnp.ones((1, 5, 2, 1)), train=False)
    assert make(3, padding="SAME").init(jax.random.key(0), (1, 2, 5, 1))[0].shape == (1, 1, 2, 1)


@pytest.mark.parametrize("make", [jn.MaxPool, jn.AvgPool])
@pytest.mark.parametrize(
    "args,message",
    [
        ((0,), "window must be >= 1"),
        (((2, -1),), "window must be >= 1"),
        ((2, 0), "strides must be >= 1"),
        ((2, (1, -2)), "strides must be >= 1"),
        ((2, 1, "FULL"), "padding must be one of"),
        ((2, 1, "CAUSAL"), "padding must be one of"),
        (((2, 2, 2, 2),), "window must be an int"),
        ((2, 1, 2), r"padding \(\(2, 2\), \(2, 2\)\) must be smaller than the window"),
        ((3, 1, ((0, 3), (1, 1))), "must be smaller than the window"),
    ],
)
def test_bad_pool_arguments(make, args, message):
    with pytest.raises(ValueError, match=message):
        make(*args)


@pytest.mark.parametrize("make", [jn.MaxPool, jn.AvgPool])
def test_pool_wrong_rank_and_dtype(make):
    with pytest.raises(jn.LayerError, match=r"expected a rank-4 input .* got shape \(6, 6, 3\)"):
        make(2).init(jax.random.key(0), (6, 6, 3))
    with pytest.raises(jn.LayerError, match=r"expected a rank-3 input \(batch, length, channels\)"):
        make((2,)).init(jax.random.key(0), (1, 6, 6, 3))
    with pytest.raises(jn.LayerTypeError, match="expected a floating-point input"):
        make(2).apply({}, {}, jnp.ones((1, 4, 4, 1), jnp.int32), train=False)


@pytest.mark.parametrize("make", [jn.GlobalAvgPool, jn.GlobalMaxPool])
def test_global_pool_wrong_rank(make):
    with pytest.raises(jn.LayerError, match=r"rank >= 3, got shape \(4, 3\)"):
        make().init(jax.random.key(0), (4, 3))
