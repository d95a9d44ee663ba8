"""Pooling over 1, 2 or 3 spatial axes, channels-last: MaxPool, AvgPool, GlobalAvgPool,
GlobalMaxPool.

A window given as an int is 2-D (input NHWC); a tuple's length gives the number of
spatial axes (``(2,)`` pools NWC inputs, ``(2, 2, 2)`` NDHWC). ``strides`` default to
the window (Keras), and ``padding`` defaults to "VALID" (see
:mod:`jaxnets.layers.padding` for the other choices).

Example:
    >>> import jax.numpy as jnp, jaxnets as jn
    >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    >>> jn.MaxPool(2).apply({}, {}, x, train=False)[0][0, :, :, 0]
    Array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import _impl
from jaxnets.core import Layer, as_spec, check_floating, infer_output, layer_error
from jaxnets.core.arguments import flag
from jaxnets.layers._checks import check_name
from jaxnets.layers.padding import IntOrTuple, PaddingLike, Pads, Window


def _statistics_dtype(x):
    return jnp.promote_types(x.dtype, jnp.float32)


def _reduce_window(x, init, op, window: Window, pads: Pads):
    return jax.lax.reduce_window(
        x,
        init,
        op,
        (1, *window.size, 1),
        (1, *window.strides, 1),
        ((0, 0), *pads, (0, 0)),
    )


def _max_pool(x, size, strides, pads):
    """The maximum over each window; padded cells count as -inf."""
    return jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max, (1, *size, 1), (1, *strides, 1), ((0, 0), *pads, (0, 0))
    )


_impl.define_op("max_pool", _max_pool, layer="MaxPool")


def _pool_window(kind: str, window, strides, padding) -> Window:
    geometry = Window.make(kind, "window", window, strides, padding, causal_ok=False)
    if isinstance(geometry.padding, tuple) and any(
        max(pair) >= k for pair, k in zip(geometry.padding, geometry.size, strict=True)
    ):
        raise ValueError(
            f"{kind}: padding {geometry.padding} must be smaller than the window "
            f"{geometry.size} on every axis, or some windows would cover only padding"
        )
    return geometry


def _pool_layer(kind: str, window: Window, pool, name: str | None) -> Layer:
    check_name(kind, name)

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        return pool(x, window.pads(x.shape)), state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        if not isinstance(spec, jax.ShapeDtypeStruct):
            raise layer_error(kind, f"expected a single array input, got {type(spec).__name__}")
        return infer_output(apply, {}, {}, spec), {}, {}

    return Layer(init, apply, kind, name)


def MaxPool(
    window: IntOrTuple,
    strides: IntOrTuple | None = None,
    padding: PaddingLike = "VALID",
    *,
    impl: str = "auto",
    name: str | None = None,
) -> Layer:
    """The maximum over each window; padded cells never win (they count as -inf).

    Args:
      window: the window, an int (2-D) or a tuple (one size per spatial axis).
      strides: the steps between windows (default: the window).
      padding: "VALID", "SAME", or explicit pads (see :mod:`jaxnets.layers.padding`).
      impl: "auto", "reference" or "tiled" (windows that tile the input computed by a
        chain of selects, which "auto" picks on the CPU: same values and gradients; see
        ``docs/implementations.md``).
      name: the key of the layer in its parent.

    Returns:
      The layer (no params).

    Example:
        >>> import jax, jaxnets as jn
        >>> spec, _, _ = jn.MaxPool(3, strides=2, padding="SAME").init(
        ...     jax.random.key(0), (1, 7, 7, 4))
        >>> spec.shape
        (1, 4, 4, 4)
    """
    kind = "MaxPool"
    geometry = _pool_window(kind, window, strides, padding)
    _impl.check_impl("max_pool", impl)

    def pool(x, pads):
        args = (x, geometry.size, geometry.strides, pads)
        return (_impl.choose("max_pool", impl, *args).fn or _max_pool)(*args)

    return _pool_layer(kind, geometry, pool, name)


def _valid_counts(window: Window, spatial: tuple[int, ...], pads: Pads, out: tuple[int, ...]):
    """How many real (unpadded) input cells each output window covers: ``(1, *out, 1)``."""
    per_axis = []
    for n, k, s, (lo, _), m in zip(spatial, window.size, window.strides, pads, out, strict=True):
        start = np.arange(m) * s - lo
        per_axis.append(np.minimum(start + k, n) - np.maximum(start, 0))
    counts = per_axis[0]
    for c in per_axis[1:]:
        counts = np.multiply.outer(counts, c)
    return counts.reshape((1, *out, 1))


def AvgPool(
    window: IntOrTuple,
    strides: IntOrTuple | None = None,
    padding: PaddingLike = "VALID",
    count_include_pad: bool = False,
    *,
    name: str | None = None,
) -> Layer:
    """The mean over each window; sums are accumulated in at least float32.

    Args:
      window: the window, an int (2-D) or a tuple (one size per spatial axis).
      strides: the steps between windows (default: the window).
      padding: "VALID", "SAME", or explicit pads (see :mod:`jaxnets.layers.padding`).
      count_include_pad: False: divide each window's sum by the number of real input cells
        it covers, ignoring padding (as Keras and TensorFlow with "SAME", and flax's
        ``count_include_pad=False``); True: padded cells count as zeros and every window
        divides by its full size (PyTorch's default). With "VALID" the two agree.
      name: the key of the layer in its parent.

    Returns:
      The layer (no params).

    Example:
        >>> import jax.numpy as jnp, jaxnets as jn
        >>> x = jnp.ones((1, 3, 3, 1))
        >>> y, _ = jn.AvgPool(2, strides=1, padding=1).apply({}, {}, x, train=False)
        >>> float(y[0, 0, 0, 0])
        1.0
        >>> pytorch_like = jn.AvgPool(2, strides=1, padding=1, count_include_pad=True)
        >>> float(pytorch_like.apply({}, {}, x, train=False)[0][0, 0, 0, 0])
        0.25
    """
    kind = "AvgPool"
    geometry = _pool_window(kind, window, strides, padding)
    flag(kind, "count_include_pad", count_include_pad)

    def pool(x, pads):
        dtype = _statistics_dtype(x)
        sums = _reduce_window(x.astype(dtype), 0.0, jax.lax.add, geometry, pads)
        if count_include_pad or not any(lo or hi for lo, hi in pads):
            means = sums / math.prod(geometry.size)
        else:
            counts = _valid_counts(geometry, tuple(x.shape[1:-1]), pads, tuple(sums.shape[1:-1]))
            means = sums / jnp.asarray(counts, dtype)
        return means.astype(x.dtype)

    return _pool_layer(kind, geometry, pool, name)


def _global_pool(kind: str, reduce, name: str | None, keepdims) -> Layer:
    flag(kind, "keepdims", keepdims)
    check_name(kind, name)

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        if x.ndim < 3:
            raise layer_error(
                kind,
                f"expected an input (batch, *spatial, channels) of rank >= 3, got shape "
                f"{tuple(x.shape)}",
            )
        axes = tuple(range(1, x.ndim - 1))
        return reduce(x, axes).astype(x.dtype), state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        if not isinstance(spec, jax.ShapeDtypeStruct):
            raise layer_error(kind, f"expected a single array input, got {type(spec).__name__}")
        return infer_output(apply, {}, {}, spec), {}, {}

    return Layer(init, apply, kind, name)


def GlobalAvgPool(keepdims: bool = False, *, name: str | None = None) -> Layer:
    """The mean over every spatial axis: ``(N, *spatial, C) -> (N, C)``
    (``(N, 1, ..., 1, C)`` with ``keepdims=True``), accumulated in at least float32.

    Args:
      keepdims: keep the spatial axes, each of size 1.
      name: the key of the layer in its parent.

    Returns:
      The layer (no params).

    Example:
        >>> import jax.numpy as jnp, jaxnets as jn
        >>> jn.GlobalAvgPool().apply({}, {}, jnp.ones((2, 5, 5, 3)), train=False)[0].shape
        (2, 3)
    """

    def reduce(x, axes):
        return jnp.mean(x.astype(_statistics_dtype(x)), axis=axes, keepdims=keepdims)

    return _global_pool("GlobalAvgPool", reduce, name, keepdims)


def GlobalMaxPool(keepdims: bool = False, *, name: str | None = None) -> Layer:
    """The maximum over every spatial axis: ``(N, *spatial, C) -> (N, C)``
    (``(N, 1, ..., 1, C)`` with ``keepdims=True``).

    Args:
      keepdims: keep the spatial axes, each of size 1.
      name: the key of the layer in its parent.

    Returns:
      The layer (no params).

    Example:
        >>> import jax.numpy as jnp, jaxnets as jn
        >>> jn.GlobalMaxPool(keepdims=True).apply(
        ...     {}, {}, jnp.ones((2, 4, 3)), train=False)[0].shape
        (2, 1, 3)
    """

    def reduce(x, axes):
        return jnp.max(x, axis=axes, keepdims=keepdims)

    return _global_pool("GlobalMaxPool", reduce, name, keepdims)
