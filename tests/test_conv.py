"""Convolutions against independent references (flax with the same weights, direct
``jax.lax`` calls, a numpy loop), Keras parameter counts, and the errors on bad input."""

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


def _apply(layer, params, x):
    return layer.apply(params, {}, x, train=False)[0]


def _init(layer, shape, seed=0):
    """``layer.init`` traced abstractly, with normal params from numpy: this checks the
    same shapes and errors without compiling a random initialiser for every shape."""
    spec, params, state = jn.shape_tree(layer, shape)
    rng = np.random.default_rng(seed)
    params = jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), params)
    return spec, params, state


def _flax(module, params, x):
    return module.apply({"params": params}, x)


# --------------------------------------------------------------------------- Conv

CONV2D_GRID = list(
    itertools.product(
        [1, (2, 3)],  # strides
        ["SAME", "VALID", ((1, 2), (0, 1))],  # padding
        [1, 2],  # dilation
        [1, 2],  # groups
    )
)


@pytest.mark.parametrize("strides,padding,dilation,groups", CONV2D_GRID)
def test_conv2d_equals_flax(strides, padding, dilation, groups):
    layer = jn.Conv(6, (3, 2), strides, padding, dilation, groups)
    x = _normal(1, (2, 7, 8, 4))
    spec, params, _ = _init(layer, x.shape)
    reference = nn.Conv(
        6,
        (3, 2),
        strides=strides,
        padding=padding,
        kernel_dilation=dilation,
        feature_group_count=groups,
    )
    y = _apply(layer, params, x)
    assert y.shape == spec.shape
    np.testing.assert_allclose(y, _flax(reference, params, x), **TOL)


@pytest.mark.parametrize(
    "kernel_size,strides,padding,dilation,shape",
    [
        ((5,), 1, "SAME", 1, (2, 11, 3)),
        ((5,), 2, "VALID", 2, (2, 11, 3)),
        ((3,), 1, "CAUSAL", 3, (2, 11, 3)),
        ((4,), 3, ((2, 1),), 1, (2, 11, 3)),
        ((2, 3, 2), 1, "SAME", 1, (2, 4, 5, 6, 2)),
        ((2, 3, 2), (1, 2, 2), "VALID", (2, 1, 1), (2, 4, 5, 6, 2)),
        ((3, 3, 3), 2, 1, 1, (1, 5, 5, 5, 2)),
    ],
)
def test_conv_1d_3d_equal_flax(kernel_size, strides, padding, dilation, shape):
    layer = jn.Conv(4, kernel_size, strides, padding, dilation)
    x = _normal(3, shape)
    spec, params, _ = _init(layer, shape)
    reference = nn.Conv(4, kernel_size, strides=strides, padding=padding, kernel_dilation=dilation)
    y = _apply(layer, params, x)
    assert y.shape == spec.shape
    np.testing.assert_allclose(y, _flax(reference, params, x), **TOL)


def _numpy_conv2d(x, kernel, bias, strides, pads, dilation, groups):
    """A direct loop: out[n, i, j, o] = sum over the window and the group's channels."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), *pads, (0, 0)))
    kernel = np.asarray(kernel, np.float64)
    kh, kw, cin_g, features = kernel.shape
    out_g = features // groups
    eh, ew = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    oh = (x.shape[1] - eh) // strides[0] + 1
    ow = (x.shape[2] - ew) // strides[1] + 1
    out = np.zeros((x.shape[0], oh, ow, features))
    for i, j, o in itertools.product(range(oh), range(ow), range(features)):
        g = o // out_g
        patch = x[
            :,
            i * strides[0] : i * strides[0] + eh : dilation[0],
            j * strides[1] : j * strides[1] + ew : dilation[1],
            g * cin_g : (g + 1) * cin_g,
        ]
        out[:, i, j, o] = np.einsum("nhwc,hwc->n", patch, kernel[..., o]) + bias[o]
    return out


def test_conv2d_equals_a_numpy_loop():
    layer = jn.Conv(4, (3, 2), strides=(2, 1), padding=((2, 1), (1, 0)), dilation=(1, 2), groups=2)
    x = _normal(5, (2, 7, 6, 4))
    _, params, _ = _init(layer, x.shape)
    expected = _numpy_conv2d(
        x, params["kernel"], np.asarray(params["bias"]), (2, 1), ((2, 1), (1, 0)), (1, 2), 2
    )
    np.testing.assert_allclose(_apply(layer, params, x), expected, **TOL)


def test_conv_equals_direct_lax_call_with_activation():
    layer = jn.Conv(5, 3, strides=2, padding="SAME", use_bias=False, activation="relu")
    x = _normal(7, (3, 9, 9, 2))
    _, params, _ = _init(layer, x.shape)
    expected = jax.lax.conv_general_dilated(
        x, params["kernel"], (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(_apply(layer, params, x), jax.nn.relu(expected), **TOL)
    assert list(params) == ["kernel"]


@pytest.mark.parametrize(
    "kernel_size,channels,features,groups", [(3, 3, 8, 1), ((5,), 4, 6, 2), ((1, 3, 3), 6, 6, 3)]
)
def test_conv_parameter_count_is_keras(kernel_size, channels, features, groups):
    ks = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    shape = (1, *(7,) * len(ks), channels)
    _, params, _ = jn.shape_tree(jn.Conv(features, kernel_size, groups=groups), shape)
    assert params["kernel"].shape == (*ks, channels // groups, features)
    assert jn.count_params(params) == int(np.prod(ks)) * channels // groups * features + features


def test_conv_glorot_uniform_by_default():
    _, params, _ = jn.Conv(64, 3).init(jax.random.key(0), (1, 8, 8, 32))
    limit = np.sqrt(6.0 / (9 * 32 + 9 * 64))
    kernel = np.asarray(params["kernel"])
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.95 * limit
    np.testing.assert_array_equal(params["bias"], np.zeros(64))


# --------------------------------------------------------------------------- ConvTranspose


@pytest.mark.parametrize(
    "strides,padding,dilation",
    list(itertools.product([1, (3, 2)], ["SAME", "VALID", ((1, 2), (0, 1))], [1, 2])),
)
def test_conv_transpose_equals_flax(strides, padding, dilation):
    layer = jn.ConvTranspose(3, (3, 2), strides, padding, dilation)
    x = _normal(8, (2, 4, 5, 2))
    spec, params, _ = _init(layer, x.shape)
    pair = (strides, strides) if isinstance(strides, int) else strides
    reference = nn.ConvTranspose(
        3, (3, 2), strides=pair, padding=padding, kernel_dilation=(dilation, dilation)
    )
    y = _apply(layer, params, x)
    assert y.shape == spec.shape
    np.testing.assert_allclose(y, _flax(reference, params, x), **TOL)


@pytest.mark.parametrize("strides", [1, 2, 3])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_conv_transpose_output_sizes_are_keras(strides, padding):
    k = 3
    spec, _, _ = _init(jn.ConvTranspose(2, k, strides, padding), (1, 5, 4, 1))
    if padding == "SAME":
        expected = (5 * strides, 4 * strides)
    else:
        expected = (5 * strides + max(k - strides, 0), 4 * strides + max(k - strides, 0))
    assert spec.shape == (1, *expected, 2)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_conv_transpose_is_the_gradient_of_a_conv_with_the_keras_kernel(padding):
    """Keras's Conv2DTranspose is the input-gradient of a conv with its (kh, kw, out, in)
    kernel; the documented conversion gives the same numbers here."""
    keras_kernel = _normal(10, (3, 3, 4, 2))  # (kh, kw, features, in_channels)
    x = _normal(11, (2, 4, 4, 2))
    layer = jn.ConvTranspose(4, 3, strides=2, padding=padding, use_bias=False)
    spec, _, _ = _init(layer, x.shape)
    converted = {"kernel": keras_kernel[::-1, ::-1].swapaxes(-1, -2)}

    def conv(z):
        return jax.lax.conv_general_dilated(
            z, keras_kernel, (2, 2), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    _, vjp = jax.vjp(conv, jnp.zeros(spec.shape))
    np.testing.assert_allclose(_apply(layer, converted, x), vjp(x)[0], **TOL)


def test_conv_transpose_1d_equals_flax():
    layer = jn.ConvTranspose(3, (4,), strides=3, padding="VALID")
    x = _normal(12, (2, 5, 2))
    _, params, _ = _init(layer, x.shape)
    reference = nn.ConvTranspose(3, (4,), strides=(3,), padding="VALID")
    np.testing.assert_allclose(_apply(layer, params, x), _flax(reference, params, x), **TOL)


# --------------------------------------------------------------------------- depthwise / separable


@pytest.mark.parametrize(
    "strides,padding,dilation,dm",
    [(1, "SAME", 1, 1), (2, "VALID", 1, 2), (1, ((1, 0), (2, 1)), 2, 3), ((2, 1), "SAME", 2, 1)],
)
def test_depthwise_conv_equals_per_channel_convs_with_the_keras_kernel(
    strides, padding, dilation, dm
):
    channels = 3
    x = _normal(13, (2, 7, 6, channels))
    keras_kernel = _normal(14, (3, 3, channels, dm))
    bias = _normal(15, (channels * dm,))
    layer = jn.DepthwiseConv(3, strides, padding, dm, dilation)
    spec, params, _ = _init(layer, x.shape)
    assert params["kernel"].shape == (3, 3, 1, channels * dm)
    params = {"kernel": keras_kernel.reshape(3, 3, 1, channels * dm), "bias": bias}
    s = (strides, strides) if isinstance(strides, int) else strides
    outputs = [
        jax.lax.conv_general_dilated(
            x[..., c : c + 1],
            keras_kernel[:, :, c : c + 1, m : m + 1],
            s,
            padding,
            rhs_dilation=(dilation, dilation),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        for c in range(channels)
        for m in range(dm)
    ]
    expected = jnp.concatenate(outputs, axis=-1) + bias.reshape(1, 1, 1, -1)
    y = _apply(layer, params, x)
    assert y.shape == spec.shape
    np.testing.assert_allclose(y, expected, **TOL)


@pytest.mark.parametrize(
    "strides,padding,dilation,dm", [(1, "SAME", 1, 1), (2, "VALID", 1, 2), (1, "SAME", 2, 2)]
)
def test_separable_conv_equals_depthwise_then_pointwise(strides, padding, dilation, dm):
    x = _normal(16, (2, 8, 7, 3))
    layer = jn.SeparableConv(5, 3, strides, padding, dm, dilation, activation="relu")
    _, params, _ = _init(layer, x.shape)
    dims = ("NHWC", "HWIO", "NHWC")
    depthwise = jax.lax.conv_general_dilated(
        x,
        params["depthwise_kernel"],
        (strides, strides),
        padding,
        rhs_dilation=(dilation, dilation),
        dimension_numbers=dims,
        feature_group_count=3,
    )
    pointwise = jax.lax.conv_general_dilated(
        depthwise, params["pointwise_kernel"], (1, 1), "VALID", dimension_numbers=dims
    )
    expected = jax.nn.relu(pointwise + params["bias"].reshape(1, 1, 1, 5))
    np.testing.assert_allclose(_apply(layer, params, x), expected, **TOL)


@pytest.mark.parametrize(
    "kernel,channels,dm,features", [(3, 3, 1, 8), ((5, 3), 4, 2, 6), (3, 728, 1, 728)]
)
def test_separable_conv_parameter_count_is_keras(kernel, channels, dm, features):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    layer = jn.SeparableConv(features, kernel, depth_multiplier=dm)
    _, params, _ = jn.shape_tree(layer, (1, 9, 9, channels))
    assert jn.count_params(params) == kh * kw * channels * dm + channels * dm * features + features
    assert params["depthwise_kernel"].shape == (kh, kw, 1, channels * dm)
    assert params["pointwise_kernel"].shape == (1, 1, channels * dm, features)
    no_bias = jn.shape_tree(
        jn.SeparableConv(features, kernel, 1, "SAME", dm, use_bias=False), (1, 9, 9, channels)
    )[1]
    assert jn.count_params(no_bias) == kh * kw * channels * dm + channels * dm * features


def test_depthwise_conv_parameter_count_is_keras():
    _, params, _ = jn.shape_tree(jn.DepthwiseConv((3, 5), depth_multiplier=2), (1, 9, 9, 4))
    assert jn.count_params(params) == 3 * 5 * 4 * 2 + 4 * 2


# --------------------------------------------------------------------------- errors


def test_wrong_channel_count_at_apply_names_layer_and_shapes():
    layer = jn.Conv(8, 3)
    _, params, _ = _init(layer, (1, 6, 6, 3))
    with pytest.raises(
        jn.LayerError,
        match=r"Conv: input has 4 channels .*\(1, 6, 6, 4\).*"
        r"\(3, 3, 3, 8\).*built for 3",
    ):
        _apply(layer, params, jnp.ones((1, 6, 6, 4)))


@pytest.mark.parametrize(
    "make,good,bad",
    [
        (lambda: jn.DepthwiseConv(3, depth_multiplier=2), (1, 5, 5, 3), (1, 5, 5, 4)),
        (lambda: jn.SeparableConv(4, 3), (1, 5, 5, 3), (1, 5, 5, 2)),
        (lambda: jn.ConvTranspose(4, 3), (1, 5, 5, 3), (1, 5, 5, 5)),
        (lambda: jn.Conv(4, 3, groups=2), (1, 5, 5, 4), (1, 5, 5, 6)),
        (lambda: jn.Conv(4, (3,)), (1, 5, 3), (1, 5, 1)),
    ],
)
def test_wrong_channel_count_for_every_conv(make, good, bad):
    layer = make()
    _, params, _ = _init(layer, good)
    with pytest.raises(jn.LayerError, match=rf"{layer.kind}: input has {bad[-1]} channels"):
        _apply(layer, params, jnp.ones(bad))


def test_input_smaller_than_valid_kernel_at_init_and_apply():
    layer = jn.Conv(4, 5, padding="VALID")
    with pytest.raises(jn.LayerError, match=r"Conv: .*\(3, 3\).*smaller than the kernel \(5, 5\)"):
        _init(layer, (1, 3, 3, 2))
    _, params, _ = _init(layer, (1, 8, 8, 2))
    with pytest.raises(jn.LayerError, match=r"Conv: .*\(1, 4, 8, 2\).*smaller than the kernel"):
        _apply(layer, params, jnp.ones((1, 4, 8, 2)))


def test_dilated_and_explicit_padding_size_checks():
    with pytest.raises(jn.LayerError, match=r"extent \(5, 3\)"):
        _init(jn.Conv(2, 3, padding="VALID", dilation=(2, 1)), (1, 4, 4, 1))
    spec, _, _ = _init(jn.Conv(2, 3, padding=((1, 0), (0, 0))), (1, 2, 3, 1))
    assert spec.shape == (1, 1, 1, 2)
    with pytest.raises(jn.LayerError, match=r"DepthwiseConv: .*smaller"):
        _init(jn.DepthwiseConv(4, padding="VALID"), (1, 3, 6, 2))
    with pytest.raises(jn.LayerError, match=r"ConvTranspose: .*smaller"):
        _init(jn.ConvTranspose(2, 5, padding=((0, 0), (0, 0))), (1, 2, 2, 1))


@pytest.mark.parametrize("argument", ["strides", "dilation"])
@pytest.mark.parametrize("value", [0, -1, (1, 0)])
@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: jn.Conv(4, 3, **kw),
        lambda **kw: jn.ConvTranspose(4, 3, **kw),
        lambda **kw: jn.DepthwiseConv(3, **kw),
        lambda **kw: jn.SeparableConv(4, 3, **kw),
    ],
)
def test_non_positive_strides_and_dilation_rejected_at_construction(make, argument, value):
    with pytest.raises(ValueError, match=rf"{argument} must be >= 1"):
        make(**{argument: value})


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: jn.Conv(4, 0), "kernel_size must be >= 1"),
        (lambda: jn.Conv(4, (3, 3, 3, 3)), "kernel_size must be an int"),
        (lambda: jn.Conv(0, 3), "features must be a positive int"),
        (lambda: jn.Conv(4, 3, groups=0), "groups must be a positive int"),
        (lambda: jn.Conv(4, 3, padding="FULL"), "padding must be one of"),
        (lambda: jn.Conv(4, 3, padding="CAUSAL"), "CAUSAL.*1-D"),
        (lambda: jn.Conv(4, 3, padding=((1, 1),)), "padding must be"),
        (lambda: jn.Conv(4, 3, padding=-1), "padding must be >= 0"),
        (lambda: jn.Conv(4, 3, strides=(1, 1, 1)), "strides must be an int or a tuple of 2"),
        (lambda: jn.DepthwiseConv(3, depth_multiplier=0), "depth_multiplier"),
        (lambda: jn.Conv(4, 3, activation="nope"), "unknown activation"),
    ],
)
def test_bad_constructor_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_groups_must_divide_channels_and_features():
    with pytest.raises(ValueError, match=r"Conv: groups=3 must divide features=4"):
        jn.Conv(4, 3, groups=3)
    with pytest.raises(
        jn.LayerError,
        match=r"Conv: groups=2 must divide the input channels, "
        r"got 3 channels \(input shape \(1, 5, 5, 3\)\)",
    ):
        _init(jn.Conv(4, 3, groups=2), (1, 5, 5, 3))


@pytest.mark.parametrize(
    "make",
    [
        lambda: jn.Conv(4, 3),
        lambda: jn.DepthwiseConv(3),
        lambda: jn.ConvTranspose(2, 3),
        lambda: jn.SeparableConv(2, 3),
    ],
)
def test_wrong_rank_at_init_and_apply(make):
    layer = make()
    with pytest.raises(
        jn.LayerError,
        match=rf"{layer.kind}: expected a rank-4 input \(batch, height, width, channels\) for 2 "
        r"spatial axes, got shape \(5, 5, 3\) of rank 3",
    ):
        _init(layer, (5, 5, 3))
    _, params, _ = _init(layer, (1, 5, 5, 3))
    with pytest.raises(jn.LayerError, match="expected a rank-4 input"):
        _apply(layer, params, jnp.ones((5, 5, 3)))


def test_conv1d_rejects_images():
    with pytest.raises(jn.LayerError, match=r"rank-3 input \(batch, length, channels\)"):
        _init(jn.Conv(4, (3,)), (1, 5, 5, 3))


def test_non_floating_input():
    layer = jn.Conv(4, 3)
    _, params, _ = _init(layer, (1, 5, 5, 3))
    with pytest.raises(
        jn.LayerTypeError, match="Conv: expected a floating-point input, got dtype int32"
    ):
        _apply(layer, params, jnp.ones((1, 5, 5, 3), jnp.int32))
    with pytest.raises(jn.LayerTypeError, match="Conv: expected a floating-point input"):
        _init(layer, jax.ShapeDtypeStruct((1, 5, 5, 3), jnp.int32))


def test_errors_inside_a_network_carry_the_path():
    net = jn.serial(jn.Conv(4, 3), ("head", jn.Conv(2, 5, padding="VALID")))
    with pytest.raises(jn.LayerError, match=r"head/Conv: .*smaller than the kernel"):
        _init(net, (1, 4, 4, 1))


def test_mis_shaped_kernel_is_named():
    layer = jn.Conv(4, 3)
    _, params, _ = _init(layer, (1, 5, 5, 3))
    with pytest.raises(
        jn.LayerError,
        match=r"parameter 'kernel' has shape \(3, 3, 3, 5\), "
        r"expected \(3, 3, 3, 4\)",
    ):
        _apply(layer, {**params, "kernel": jnp.ones((3, 3, 3, 5))}, jnp.ones((1, 5, 5, 3)))


def test_bfloat16_compute_keeps_float32_params():
    layer = jn.SeparableConv(4, 3)
    _, params, _ = _init(layer, (1, 5, 5, 3))
    y = _apply(layer, params, jnp.ones((1, 5, 5, 3), jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
