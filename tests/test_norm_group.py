"""GroupNorm against flax's nn.GroupNorm with the same scale and bias, and its errors."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn


def _normal(rng, shape):
    return jnp.asarray(rng.standard_normal(shape), jnp.float32)


@pytest.mark.parametrize(
    "num_groups,shape",
    [
        (1, (2, 4, 4, 6)),
        (2, (2, 4, 4, 6)),
        (6, (2, 4, 4, 6)),
        (4, (3, 8)),
        (2, (2, 5, 4)),
        (3, (2, 2, 3, 2, 6)),
    ],
)
def test_group_norm_equals_flax(num_groups, shape):
    rng = np.random.default_rng(0)
    x = 3.0 * _normal(rng, shape) + 1.5
    channels = shape[-1]
    params = {
        "scale": _normal(rng, (channels,)),
        "bias": _normal(rng, (channels,)),
    }
    layer = jn.GroupNorm(num_groups)
    spec, init_params, state = layer.init(jax.random.key(1), shape)
    assert spec.shape == shape and state == {}
    np.testing.assert_array_equal(init_params["scale"], np.ones(channels))
    np.testing.assert_array_equal(init_params["bias"], np.zeros(channels))
    expected = nn.GroupNorm(num_groups=num_groups, epsilon=1e-5).apply({"params": params}, x)
    for train in (False, True):
        y, _ = layer.apply(params, {}, x, train=train)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_group_norm_without_affine_is_per_example_per_group():
    x = (
        _normal(np.random.default_rng(2), (3, 5, 5, 4)) * jnp.arange(1.0, 5.0).reshape(1, 1, 1, 4)
        + 2.0
    )
    y, _ = jn.GroupNorm(2, use_scale=False, use_bias=False).apply({}, {}, x, train=False)
    groups = np.asarray(y).reshape(3, 25, 2, 2)
    np.testing.assert_allclose(groups.mean(axis=(1, 3)), np.zeros((3, 2)), atol=1e-5)
    np.testing.assert_allclose(groups.var(axis=(1, 3)), np.ones((3, 2)), atol=1e-3)


def test_group_norm_bfloat16():
    layer = jn.GroupNorm(2)
    _, params, _ = layer.init(jax.random.key(0), (2, 4, 4, 4))
    x = _normal(np.random.default_rng(3), (2, 4, 4, 4))
    y, _ = layer.apply(params, {}, x.astype(jnp.bfloat16), train=False)
    assert y.dtype == jnp.bfloat16
    reference, _ = layer.apply(params, {}, x, train=False)
    np.testing.assert_allclose(y.astype(jnp.float32), reference, atol=0.05)


def test_group_norm_errors():
    with pytest.raises(
        jn.LayerError,
        match=r"GroupNorm: num_groups=32 must divide the channels, got 48 channels \(input "
        r"shape \(2, 4, 4, 48\)\)",
    ):
        jn.GroupNorm().init(jax.random.key(0), (2, 4, 4, 48))
    layer = jn.GroupNorm(4)
    _, params, _ = layer.init(jax.random.key(0), (2, 4, 4, 8))
    with pytest.raises(jn.LayerError, match="num_groups=4 must divide the channels, got 6"):
        layer.apply(params, {}, jnp.ones((2, 4, 4, 6)), train=False)
    with pytest.raises(
        jn.LayerError, match=r"parameter 'scale' has shape \(8,\), expected \(12,\)"
    ):
        layer.apply(params, {}, jnp.ones((2, 4, 4, 12)), train=False)
    with pytest.raises(ValueError, match="GroupNorm: num_groups must be a positive int"):
        jn.GroupNorm(0)
    with pytest.raises(
        ValueError, match=r"GroupNorm: epsilon must be a finite number > 0, got 0\.0"
    ):
        jn.GroupNorm(2, epsilon=0.0)
    with pytest.raises(jn.LayerTypeError, match="GroupNorm: expected a floating-point input"):
        layer.apply(params, {}, jnp.ones((2, 4, 4, 8), jnp.int32), train=False)
