"""Depthwise and depthwise-separable convolutions (MobileNet, Xception): DepthwiseConv and
SeparableConv, on the helpers of :mod:`jaxnets.layers.conv`.

Example:
    >>> import jax, jaxnets as jn
    >>> spec, params, _ = jn.SeparableConv(8, 3).init(jax.random.key(0), (1, 9, 9, 4))
    >>> spec.shape, params["depthwise_kernel"].shape, params["pointwise_kernel"].shape
    ((1, 9, 9, 8), (3, 3, 1, 4), (1, 1, 4, 8))
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxnets.core import Layer, check_floating, infer_output, param
from jaxnets.core.arguments import count
from jaxnets.layers.conv import (
    Initializer,
    _add_bias,
    _check_kernel,
    _constructor,
    _conv,
    _default,
    _single_spec,
    ranked,
)
from jaxnets.layers.padding import IntOrTuple, PaddingLike, Window


def DepthwiseConv(
    kernel_size: IntOrTuple,
    strides: IntOrTuple = 1,
    padding: PaddingLike = "SAME",
    depth_multiplier: int = 1,
    dilation: IntOrTuple = 1,
    *,
    use_bias: bool = True,
    kernel_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
    activation: str | Callable | None = None,
    param_dtype=jnp.float32,
    rank: int | None = None,
    name: str | None = None,
) -> Layer:
    """A depthwise convolution: each input channel convolved with its own
    ``depth_multiplier`` filters, giving ``channels * depth_multiplier`` outputs.

    A grouped convolution with ``groups = channels``; output channel ``c * dm + m`` is
    filter ``m`` of input channel ``c`` (TensorFlow's order). Params: ``kernel``
    ``(*kernel_size, 1, channels * dm)`` (flax's layout for this grouped convolution) and
    ``bias`` ``(channels * dm,)``. Keras's ``DepthwiseConv2D`` stores the same numbers as
    ``(kh, kw, channels, dm)``: ``keras_kernel.reshape(kh, kw, 1, channels * dm)`` converts it.

    Args:
      kernel_size: an int (2-D) or one size per spatial axis.
      strides: the steps of the kernel, an int or one per spatial axis.
      padding: see :mod:`jaxnets.layers.padding`, or (1-D only) "CAUSAL": all on the left.
      depth_multiplier: the filters per input channel, ``dm``.
      dilation: the spacing of the kernel's taps, an int or one per spatial axis.
      use_bias: add a learned bias.
      kernel_init: the kernel's initialiser (default Glorot uniform, as Keras).
      bias_init: the bias initialiser (default zeros).
      activation: applied to the output: a name ("relu"), a function, or None (identity).
      param_dtype: the dtype of the params.
      rank: the number of spatial axes (see :func:`jaxnets.Conv`); None: an int kernel is 2-D.
      name: the key of the layer in its parent.

    Returns:
      The layer; params ``kernel`` (*kernel_size, 1, channels * dm), ``bias`` (channels * dm,).

    Example:
        >>> import jax, jaxnets as jn
        >>> dw = jn.DepthwiseConv(3, depth_multiplier=2)
        >>> spec, params, _ = dw.init(jax.random.key(0), (1, 8, 8, 5))
        >>> spec.shape, params["kernel"].shape
        ((1, 8, 8, 10), (3, 3, 1, 10))
    """
    kind = "DepthwiseConv"
    depth_multiplier = count(kind, "depth_multiplier", depth_multiplier)
    geometry = Window.make(
        kind, "kernel", ranked(kind, kernel_size, rank), strides, padding, dilation
    )
    act = _constructor(kind, activation, kernel_init, bias_init, name, param_dtype, use_bias)
    kernel_init = _default(kernel_init)

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        pads = geometry.pads(x.shape)
        channels = x.shape[-1]
        features = channels * depth_multiplier
        kernel = param(params, "kernel", kind)
        expected = (*geometry.size, 1, features)
        _check_kernel(kind, "kernel", kernel, x, expected, kernel.shape[-1] // depth_multiplier)
        y = _conv(x, kernel, geometry, pads, channels)
        if use_bias:
            y = _add_bias(params, kind, y, features)
        return act(y), state

    def init(key, input_spec):
        spec = _single_spec(kind, input_spec, geometry.ndim)
        features = spec.shape[-1] * depth_multiplier
        k_key, b_key = jax.random.split(key)
        params = {"kernel": kernel_init(k_key, (*geometry.size, 1, features), param_dtype)}
        if use_bias:
            params["bias"] = bias_init(b_key, (features,), param_dtype)
        return infer_output(apply, params, {}, spec), params, {}

    return Layer(init, apply, kind, name)


def SeparableConv(
    features: int,
    kernel_size: IntOrTuple,
    strides: IntOrTuple = 1,
    padding: PaddingLike = "SAME",
    depth_multiplier: int = 1,
    dilation: IntOrTuple = 1,
    *,
    use_bias: bool = True,
    kernel_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
    activation: str | Callable | None = None,
    param_dtype=jnp.float32,
    rank: int | None = None,
    name: str | None = None,
) -> Layer:
    """A depthwise-separable convolution (Chollet 2017): a depthwise convolution without
    bias, then a pointwise (1x1) convolution to ``features`` with an optional bias.

    Params: ``depthwise_kernel`` ``(*kernel_size, 1, channels * dm)`` (laid out as in
    :func:`DepthwiseConv`), ``pointwise_kernel`` ``(1, ..., 1, channels * dm, features)``
    and ``bias`` ``(features,)``, as many as Keras's ``SeparableConv2D``. ``strides`` and
    ``dilation`` apply to the depthwise step; both kernels are Glorot uniform unless
    ``kernel_init`` is given.

    Args:
      features: the number of output channels.
      kernel_size: the depthwise kernel's size, an int (2-D) or one per spatial axis.
      strides: the depthwise steps, an int or one per spatial axis.
      padding: see :mod:`jaxnets.layers.padding`, or (1-D only) "CAUSAL": all on the left.
      depth_multiplier: the depthwise filters per input channel, ``dm``.
      dilation: the spacing of the depthwise kernel's taps, an int or one per spatial axis.
      use_bias: add a learned bias.
      kernel_init: both kernels' initialiser (default Glorot uniform, as Keras).
      bias_init: the bias initialiser (default zeros).
      activation: applied to the output: a name ("relu"), a function, or None (identity).
      param_dtype: the dtype of the params.
      rank: the number of spatial axes (see :func:`jaxnets.Conv`); None: an int kernel is 2-D.
      name: the key of the layer in its parent.

    Returns:
      The layer; params ``depthwise_kernel``, ``pointwise_kernel`` and ``bias``, as above.

    Example:
        >>> import jax, jaxnets as jn
        >>> sep = jn.SeparableConv(16, 3, use_bias=False)
        >>> _, params, _ = sep.init(jax.random.key(0), (1, 8, 8, 4))
        >>> {k: v.shape for k, v in params.items()}
        {'depthwise_kernel': (3, 3, 1, 4), 'pointwise_kernel': (1, 1, 4, 16)}
    """
    kind = "SeparableConv"
    features = count(kind, "features", features)
    depth_multiplier = count(kind, "depth_multiplier", depth_multiplier)
    geometry = Window.make(
        kind, "kernel", ranked(kind, kernel_size, rank), strides, padding, dilation
    )
    act = _constructor(kind, activation, kernel_init, bias_init, name, param_dtype, use_bias)
    kernel_init = _default(kernel_init)
    ones = (1,) * geometry.ndim

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        pads = geometry.pads(x.shape)
        channels = x.shape[-1]
        middle = channels * depth_multiplier
        depthwise = param(params, "depthwise_kernel", kind)
        expected = (*geometry.size, 1, middle)
        built_for = depthwise.shape[-1] // depth_multiplier
        _check_kernel(kind, "depthwise_kernel", depthwise, x, expected, built_for)
        pointwise = param(params, "pointwise_kernel", kind, (*ones, middle, features))
        y = _conv(x, depthwise, geometry, pads, channels)
        y = jnp.dot(y, pointwise.reshape(middle, features).astype(y.dtype))
        if use_bias:
            y = _add_bias(params, kind, y, features)
        return act(y), state

    def init(key, input_spec):
        spec = _single_spec(kind, input_spec, geometry.ndim)
        middle = spec.shape[-1] * depth_multiplier
        d_key, p_key, b_key = jax.random.split(key, 3)
        params = {
            "depthwise_kernel": kernel_init(d_key, (*geometry.size, 1, middle), param_dtype),
            "pointwise_kernel": kernel_init(p_key, (*ones, middle, features), param_dtype),
        }
        if use_bias:
            params["bias"] = bias_init(b_key, (features,), param_dtype)
        return infer_output(apply, params, {}, spec), params, {}

    return Layer(init, apply, kind, name)
