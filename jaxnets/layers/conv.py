"""Convolutions over 1, 2 or 3 spatial axes: Conv and ConvTranspose.

Inputs are channels-last; kernels are stored HWIO, ``(*kernel_size, in // groups, features)``,
as in flax and Keras, so weights compare and convert directly. The depthwise and separable
convolutions are in :mod:`jaxnets.layers.depthwise`.

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> spec, params, _ = jn.Conv(8, 3, strides=2).init(jax.random.key(0), (1, 28, 28, 3))
    >>> spec.shape, params["kernel"].shape
    ((1, 14, 14, 8), (3, 3, 3, 8))
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxnets import _impl
from jaxnets.core import (
    Layer,
    along_last,
    as_spec,
    check_floating,
    check_rank,
    infer_output,
    layer_error,
    param,
)
from jaxnets.core.arguments import count
from jaxnets.layers._checks import common, initializer, resolve
from jaxnets.layers.padding import (
    IntOrTuple,
    PaddingLike,
    Pads,
    Window,
    check_spatial_rank,
    check_window_fits,
    spatial_tuple,
)

Initializer = Callable[..., jax.Array]


def _dimension_numbers(ndim: int) -> tuple[str, str, str]:
    spatial = "DHW"[3 - ndim :]
    return f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"


_impl.define_op("convolution", None, layer="Conv", declares={"convolution"})
_impl.define_op("conv_transpose", None, layer="ConvTranspose", declares={"convolution"})


def _conv(x, kernel, geometry: Window, pads: Pads, groups: int):
    _impl.choose("convolution", _impl.REFERENCE)
    return jax.lax.conv_general_dilated(
        x,
        kernel.astype(x.dtype),
        window_strides=geometry.strides,
        padding=pads,
        rhs_dilation=geometry.dilation,
        dimension_numbers=_dimension_numbers(geometry.ndim),
        feature_group_count=groups,
    )


def _constructor(kind: str, activation, kernel_init, bias_init, name, param_dtype, use_bias):
    """Check the arguments every convolution shares; returns the activation function."""
    act = resolve(kind, activation)
    initializer(kind, "kernel_init", kernel_init)
    initializer(kind, "bias_init", bias_init, optional=False)
    common(kind, name=name, dtype=param_dtype, use_bias=use_bias)
    return act


def _check_kernel(kind, name, kernel, x, expected, built_for: int) -> None:
    """Check a kernel against the shape the input needs; ``built_for`` is its channel count."""
    if tuple(kernel.shape) == tuple(expected):
        return
    if built_for != x.shape[-1] and tuple(kernel.shape[:-2]) == tuple(expected[:-2]):
        raise layer_error(
            kind,
            f"input has {x.shape[-1]} channels (shape {tuple(x.shape)}) but '{name}' has shape "
            f"{tuple(kernel.shape)}, built for {built_for} input channels; expected "
            f"{tuple(expected)}",
        )
    raise layer_error(
        kind,
        f"parameter '{name}' has shape {tuple(kernel.shape)}, expected {tuple(expected)} for "
        f"an input of shape {tuple(x.shape)}",
    )


def _check_groups(kind, shape, groups: int) -> None:
    if shape[-1] % groups:
        raise layer_error(
            kind,
            f"groups={groups} must divide the input channels, got {shape[-1]} channels "
            f"(input shape {tuple(shape)})",
        )


def _add_bias(params, kind, y, features: int):
    bias = param(params, "bias", kind, (features,))
    return y + along_last(bias.astype(y.dtype), y.ndim)


def _default(init: Initializer | None) -> Initializer:
    return jax.nn.initializers.glorot_uniform() if init is None else init


def ranked(kind: str, kernel_size, rank: int | None):
    """``kernel_size`` for a layer of ``rank`` spatial axes: an int repeated ``rank`` times.

    Args:
      kind: the layer's name, for error messages.
      kernel_size: an int or one size per spatial axis.
      rank: the number of spatial axes (1, 2 or 3), or None: an int means 2-D and a tuple
        its own length (the meaning without ``rank``).

    Returns:
      ``kernel_size``, as a tuple of ``rank`` ints when ``rank`` is given and it is an int.

    Raises:
      ValueError: if ``rank`` is not 1, 2 or 3, or a tuple ``kernel_size`` has another
        length.

    Example:
        >>> from jaxnets.layers.conv import ranked
        >>> ranked("Conv", 3, 1), ranked("Conv", 3, None)
        ((3,), 3)
    """
    if rank is None:
        return kernel_size
    if isinstance(rank, bool) or rank not in (1, 2, 3):
        raise ValueError(f"{kind}: rank must be 1, 2, 3 or None, got {rank!r}")
    if isinstance(kernel_size, int) and not isinstance(kernel_size, bool):
        return (kernel_size,) * rank
    if isinstance(kernel_size, (tuple, list)) and len(kernel_size) != rank:
        raise ValueError(
            f"{kind}: kernel_size {tuple(kernel_size)!r} has {len(kernel_size)} entries but "
            f"rank={rank}"
        )
    return kernel_size


def _keras_transpose_pads(kind, geometry: Window, output_padding) -> Pads:
    """Keras's explicit pads for a transposed convolution with ``output_padding``."""
    extra = spatial_tuple(kind, "output_padding", output_padding, geometry.ndim, minimum=0)
    if not isinstance(geometry.padding, str):
        raise ValueError(f"{kind}: output_padding needs padding 'SAME' or 'VALID'")
    pads = []
    for k, s, op in zip(geometry.extent, geometry.strides, extra, strict=True):
        if op >= s:
            raise ValueError(
                f"{kind}: output_padding must be smaller than the strides, got "
                f"{output_padding!r} with strides {geometry.strides}"
            )
        if geometry.padding == "VALID":
            pads.append((k - 1, k - 1 + op))
        else:
            total = k + k % 2 - 2 + op
            lo = min(total // 2 + total % 2, k - 1)
            pads.append((lo, total - lo))
    return tuple(pads)


def _single_spec(kind, input_spec, ndim):
    spec = as_spec(input_spec)
    check_rank(kind, spec, 0)
    check_spatial_rank(kind, spec.shape, ndim)
    return spec


def Conv(
    features: int,
    kernel_size: IntOrTuple,
    strides: IntOrTuple = 1,
    padding: PaddingLike = "SAME",
    dilation: IntOrTuple = 1,
    groups: int = 1,
    *,
    use_bias: bool = True,
    kernel_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
    activation: str | Callable | None = None,
    param_dtype=jnp.float32,
    rank: int | None = None,
    name: str | None = None,
) -> Layer:
    """A convolution ``y = activation(conv(x, kernel) + bias)`` over 1, 2 or 3 spatial axes.

    Args:
      features: the number of output channels.
      kernel_size: an int or ``(k, k)`` (2-D, NHWC), ``(k,)`` (1-D, NWC) or ``(k, k, k)``;
        with ``rank``, an int means ``rank`` axes.
      strides: the steps of the kernel, an int or one per spatial axis.
      padding: see :mod:`jaxnets.layers.padding`, or (1-D only) "CAUSAL": all on the left, as Keras.
      dilation: the spacing of the kernel's taps, an int or one per spatial axis.
      groups: channel groups convolved separately; it must divide the channels and ``features``.
      use_bias: add a learned bias.
      kernel_init: the kernel's initialiser (default Glorot uniform, as Keras).
      bias_init: the bias initialiser (default zeros).
      activation: applied to the output: a name ("relu"), a function, or None (identity).
      param_dtype: the dtype of the params.
      rank: the number of spatial axes, 1, 2 or 3 (Keras's ``Conv1D(4, 3)`` is
        ``Conv(4, 3, rank=1)``); None: an int ``kernel_size`` means 2-D.
      name: the key of the layer in its parent.

    Returns:
      The layer; params ``kernel`` (*kernel_size, in // groups, features), ``bias`` (features,).

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> conv = jn.Conv(4, (5,), padding="VALID", activation="relu")
        >>> spec, params, _ = conv.init(jax.random.key(0), (2, 10, 3))
        >>> spec.shape, params["kernel"].shape, params["bias"].shape
        ((2, 6, 4), (5, 3, 4), (4,))
    """
    kind = "Conv"
    features = count(kind, "features", features)
    groups = count(kind, "groups", groups)
    if features % groups:
        raise ValueError(f"{kind}: groups={groups} must divide features={features}")
    kernel_size = ranked(kind, kernel_size, rank)
    geometry = Window.make(kind, "kernel", kernel_size, strides, padding, dilation)
    act = _constructor(kind, activation, kernel_init, bias_init, name, param_dtype, use_bias)
    kernel_init = _default(kernel_init)

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        pads = geometry.pads(x.shape)
        _check_groups(kind, x.shape, groups)
        kernel = param(params, "kernel", kind)
        expected = (*geometry.size, x.shape[-1] // groups, features)
        _check_kernel(kind, "kernel", kernel, x, expected, kernel.shape[-2] * groups)
        y = _conv(x, kernel, geometry, pads, groups)
        if use_bias:
            y = _add_bias(params, kind, y, features)
        return act(y), state

    def init(key, input_spec):
        spec = _single_spec(kind, input_spec, geometry.ndim)
        channels = spec.shape[-1]
        _check_groups(kind, spec.shape, groups)
        k_key, b_key = jax.random.split(key)
        shape = (*geometry.size, channels // groups, features)
        params = {"kernel": kernel_init(k_key, shape, param_dtype)}
        if use_bias:
            params["bias"] = bias_init(b_key, (features,), param_dtype)
        return infer_output(apply, params, {}, spec), params, {}

    return Layer(init, apply, kind, name)


def ConvTranspose(
    features: int,
    kernel_size: IntOrTuple,
    strides: IntOrTuple = 1,
    padding: PaddingLike = "SAME",
    dilation: IntOrTuple = 1,
    *,
    use_bias: bool = True,
    kernel_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
    activation: str | Callable | None = None,
    param_dtype=jnp.float32,
    output_padding: IntOrTuple | None = None,
    rank: int | None = None,
    name: str | None = None,
) -> Layer:
    """A transposed ("fractionally strided") convolution that upsamples by ``strides``.

    As ``jax.lax.conv_transpose`` and flax's ``nn.ConvTranspose`` (``transpose_kernel=False``),
    it convolves the stride-dilated input with ``kernel`` ``(*kernel_size, in_channels, features)``.
    Output sizes are Keras's: "SAME" gives ``n * stride``, "VALID" gives
    ``n * stride + max(k - stride, 0)`` (``k`` the dilated kernel extent); explicit ``(lo, hi)``
    pairs pad the stride-dilated input, giving ``(n - 1) * stride + 1 + lo + hi - k + 1``.
    ``output_padding`` ``p`` (Keras's, each below its stride) sets the size instead:
    "VALID" gives ``(n - 1) * stride + k + p``, "SAME" ``(n - 1) * stride + k % 2 + p``.

    To load a Keras ``Conv2DTranspose`` kernel (stored ``(kh, kw, features, in)`` and
    applied as the gradient of a convolution), flip its spatial axes and swap its last
    two: ``k[::-1, ::-1].swapaxes(-1, -2)``.

    Args:
      features: the number of output channels.
      kernel_size: an int (2-D) or one size per spatial axis.
      strides: the upsampling factor, an int or one per spatial axis.
      padding: "SAME", "VALID" or explicit pads (of the stride-dilated input); no "CAUSAL".
      dilation: the spacing of the kernel's taps, an int or one per spatial axis.
      use_bias: add a learned bias.
      kernel_init: the kernel's initialiser (default Glorot uniform, as Keras).
      bias_init: the bias initialiser (default zeros).
      activation: applied to the output: a name ("relu"), a function, or None (identity).
      param_dtype: the dtype of the params.
      output_padding: None, or the cells added at the end of each spatial axis of the
        output (an int or one per axis), with "SAME" or "VALID" padding, as Keras.
      rank: the number of spatial axes (see :func:`Conv`); None: an int kernel means 2-D.
      name: the key of the layer in its parent.

    Returns:
      The layer; params ``kernel`` (*kernel_size, in_channels, features), ``bias`` (features,).

    Example:
        >>> import jax, jaxnets as jn
        >>> up = jn.ConvTranspose(4, 3, strides=2)
        >>> spec, params, _ = up.init(jax.random.key(0), (1, 7, 7, 6))
        >>> spec.shape, params["kernel"].shape
        ((1, 14, 14, 4), (3, 3, 6, 4))
    """
    kind = "ConvTranspose"
    features = count(kind, "features", features)
    kernel_size = ranked(kind, kernel_size, rank)
    geometry = Window.make(kind, "kernel", kernel_size, strides, padding, dilation, causal_ok=False)
    if output_padding is not None:
        geometry = geometry._replace(padding=_keras_transpose_pads(kind, geometry, output_padding))
    act = _constructor(kind, activation, kernel_init, bias_init, name, param_dtype, use_bias)
    kernel_init = _default(kernel_init)

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        check_spatial_rank(kind, x.shape, geometry.ndim)
        if isinstance(geometry.padding, tuple):
            stretched = tuple(
                (n - 1) * s + 1 for n, s in zip(x.shape[1:-1], geometry.strides, strict=True)
            )
            check_window_fits(
                kind,
                (x.shape[0], *stretched, x.shape[-1]),
                geometry.size,
                geometry.extent,
                geometry.padding,
                "kernel (on the stride-dilated input)",
            )
        kernel = param(params, "kernel", kind)
        expected = (*geometry.size, x.shape[-1], features)
        _check_kernel(kind, "kernel", kernel, x, expected, kernel.shape[-2])
        _impl.choose("conv_transpose", _impl.REFERENCE)
        y = jax.lax.conv_transpose(
            x,
            kernel.astype(x.dtype),
            strides=geometry.strides,
            padding=geometry.padding,
            rhs_dilation=geometry.dilation,
            dimension_numbers=_dimension_numbers(geometry.ndim),
            transpose_kernel=False,
        )
        if use_bias:
            y = _add_bias(params, kind, y, features)
        return act(y), state

    def init(key, input_spec):
        spec = _single_spec(kind, input_spec, geometry.ndim)
        k_key, b_key = jax.random.split(key)
        shape = (*geometry.size, spec.shape[-1], features)
        params = {"kernel": kernel_init(k_key, shape, param_dtype)}
        if use_bias:
            params["bias"] = bias_init(b_key, (features,), param_dtype)
        return infer_output(apply, params, {}, spec), params, {}

    return Layer(init, apply, kind, name)
