"""Window geometry shared by convolutions and pooling, and the ZeroPadding layer.

Spatial layers take channels-last inputs ``(batch, *spatial, channels)``. Their
``padding`` is ``"SAME"`` (output size ``ceil(n / stride)``, as TensorFlow, Keras
and flax: the extra cell of an odd padding goes at the end), ``"VALID"`` (no
padding), an int (that many cells on both sides of every spatial axis), one int
per spatial axis, or explicit ``((lo, hi), ...)`` pairs, one per spatial axis.

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> pad = jn.ZeroPadding(((1, 0), (2, 2)))
    >>> pad.apply({}, {}, jnp.ones((1, 3, 3, 2)), train=False)[0].shape
    (1, 4, 7, 2)
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeGuard

import jax
import jax.numpy as jnp

from jaxnets.core import Layer, as_spec, check_floating, infer_output, layer_error
from jaxnets.layers._checks import check_name

Pads = tuple[tuple[int, int], ...]
IntOrTuple = int | tuple[int, ...]
PaddingLike = str | int | Sequence[int] | Sequence[tuple[int, int]]

_AXIS_NAMES = {1: "length", 2: "height, width", 3: "depth, height, width"}


def _is_int(v) -> TypeGuard[int]:
    """A Python or NumPy integer, not a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _shown(value: Any) -> str:
    return f"{value!r} (a {type(value).__name__})" if isinstance(value, bool) else repr(value)


def spatial_tuple(kind: str, what: str, value, ndim: int, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int, or one int per spatial axis) as an ``ndim``-tuple of ints >= minimum.

    Args:
      kind: the layer's name, for error messages.
      what: the argument's name ("strides"), for error messages.
      value: an int (repeated on every axis), or a tuple or list of ``ndim`` ints.
      ndim: the number of spatial axes.
      minimum: the smallest value allowed on any axis.

    Returns:
      A tuple of ``ndim`` ints.

    Raises:
      TypeError: naming ``kind`` and ``what``, if ``value`` or an entry of it is not an
        int (a bool or a float is not).
      ValueError: naming ``kind`` and ``what``, if ``value`` has another length or a value
        below ``minimum``.
    """
    values = (value,) * ndim if _is_int(value) else value
    expected = f"an int or a tuple of {ndim} ints (one per spatial axis)"
    if not isinstance(values, (tuple, list)) or not all(_is_int(v) for v in values):
        raise TypeError(f"{kind}: {what} must be {expected}, got {_shown(value)}")
    if len(values) != ndim:
        raise ValueError(f"{kind}: {what} must be {expected}, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{kind}: {what} must be >= {minimum} on every axis, got {value!r}")
    return tuple(int(v) for v in values)


def window_rank(kind: str, what: str, value) -> int:
    """The number of spatial axes a window/kernel size gives: its length, or 2 for an int.

    Args:
      kind: the layer's name, for error messages.
      what: the argument's name ("kernel_size"), for error messages.
      value: the size: an int, or a tuple or list of 1, 2 or 3 entries (whose values are
        checked by :func:`spatial_tuple`, not here).

    Returns:
      1, 2 or 3.

    Raises:
      TypeError: if ``value`` is neither an int nor a tuple or list.
      ValueError: if ``value`` is a tuple or list of another length than 1 to 3.
    """
    if _is_int(value):
        return 2
    if isinstance(value, (tuple, list)) and len(value) in (1, 2, 3):
        return len(value)
    message = (
        f"{kind}: {what} must be an int (2-D) or a tuple of 1, 2 or 3 ints, got {_shown(value)}"
    )
    if isinstance(value, (tuple, list)):
        raise ValueError(message)
    raise TypeError(message)


def normalize_padding(kind: str, padding: PaddingLike, ndim: int, allow_causal: bool = False):
    """Validate ``padding`` and put it in one canonical form.

    Args:
      kind: the layer's name, for error messages.
      padding: a mode name (any case), an int, ``ndim`` ints, or ``ndim`` ``(lo, hi)`` pairs.
      ndim: the number of spatial axes.
      allow_causal: accept "CAUSAL" (only ever with one spatial axis).

    Returns:
      "SAME", "VALID", "CAUSAL", or a tuple of ``ndim`` ``(lo, hi)`` int pairs.

    Raises:
      TypeError: for a padding that is neither a string, an int, nor a tuple or list of
        ints or int pairs (None, a float, a bool).
      ValueError: for any other form, negative sizes, or "CAUSAL" where it is not allowed.
    """
    if isinstance(padding, str):
        mode = padding.upper()
        allowed = ("SAME", "VALID", "CAUSAL") if allow_causal else ("SAME", "VALID")
        if mode not in allowed:
            raise ValueError(
                f"{kind}: padding must be one of {allowed} or explicit, got {padding!r}"
            )
        if mode == "CAUSAL" and ndim != 1:
            raise ValueError(f"{kind}: padding='CAUSAL' is for 1-D inputs, got {ndim} spatial axes")
        return mode
    if _is_int(padding) or (
        isinstance(padding, (tuple, list)) and all(_is_int(p) for p in padding)
    ):
        sizes = spatial_tuple(kind, "padding", padding, ndim, minimum=0)
        return tuple((p, p) for p in sizes)
    if (
        isinstance(padding, (tuple, list))
        and len(padding) == ndim
        and all(
            isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(q) for q in p)
            for p in padding
        )
    ):
        if any(q < 0 for p in padding for q in p):
            raise ValueError(f"{kind}: padding must be non-negative, got {padding!r}")
        return tuple((int(lo), int(hi)) for lo, hi in padding)
    message = (
        f"{kind}: padding must be 'SAME', 'VALID', an int, {ndim} ints or {ndim} (lo, hi) "
        f"pairs, got {_shown(padding)}"
    )
    if not isinstance(padding, (tuple, list)) or not all(
        _is_int(q) for p in padding for q in (p if isinstance(p, (tuple, list)) else (p,))
    ):
        raise TypeError(message)
    raise ValueError(message)


def dilated(window: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, ...]:
    """The extent of a window whose taps are ``dilation`` cells apart.

    Args:
      window: the number of taps per axis.
      dilation: the spacing of the taps per axis.

    Returns:
      ``(k - 1) * d + 1`` per axis.
    """
    return tuple((k - 1) * d + 1 for k, d in zip(window, dilation, strict=True))


def resolve_padding(padding, spatial: tuple[int, ...], extent: tuple[int, ...], strides) -> Pads:
    """Explicit ``(lo, hi)`` pairs for a normalised ``padding`` on input sizes ``spatial``.

    Args:
      padding: the output of :func:`normalize_padding`.
      spatial: the input's size per spatial axis.
      extent: the (dilated) window extent per axis.
      strides: the steps per axis.

    Returns:
      One ``(lo, hi)`` pair per axis: zeros for "VALID", ``(extent - 1, 0)`` for "CAUSAL",
      the pads giving ``ceil(n / stride)`` outputs for "SAME" (any odd cell at the end), or
      ``padding`` itself when it is already explicit.
    """
    if padding == "VALID":
        return tuple((0, 0) for _ in spatial)
    if padding == "CAUSAL":
        return tuple((e - 1, 0) for e in extent)
    if padding == "SAME":
        pads = []
        for n, e, s in zip(spatial, extent, strides, strict=True):
            out = -(-n // s)
            total = max((out - 1) * s + e - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    return padding


def axes_description(ndim: int) -> str:
    """``"(batch, height, width, channels)"`` for 2 spatial axes, and so on.

    Args:
      ndim: the number of spatial axes, 1, 2 or 3.

    Returns:
      The axis names of a channels-last input, for error messages.
    """
    return f"(batch, {_AXIS_NAMES[ndim]}, channels)"


def check_spatial_rank(kind: str, shape: tuple[int, ...], ndim: int) -> None:
    """Raise a LayerError unless ``shape`` is ``(batch, *spatial, channels)`` with ndim axes.

    Args:
      kind: the layer's name, for the error message.
      shape: the input's shape.
      ndim: the number of spatial axes the layer expects.

    Raises:
      LayerError: if ``shape`` does not have rank ``ndim + 2``.
    """
    if len(shape) != ndim + 2:
        raise layer_error(
            kind,
            f"expected a rank-{ndim + 2} input {axes_description(ndim)} for {ndim} spatial "
            f"axes, got shape {tuple(shape)} of rank {len(shape)}",
        )


def check_window_fits(
    kind: str, shape: tuple[int, ...], window, extent, pads: Pads, what: str
) -> None:
    """Raise a LayerError if the padded input is smaller than the window on some axis.

    Args:
      kind: the layer's name, for the error message.
      shape: the input's shape ``(batch, *spatial, channels)``.
      window: the window's size per axis, for the error message.
      extent: the (dilated) window extent per axis, which the padded input must reach.
      pads: one ``(lo, hi)`` pair per spatial axis.
      what: what the window is called in the message ("kernel", "window").

    Raises:
      LayerError: if ``n + lo + hi < extent`` on some spatial axis.
    """
    spatial = tuple(shape[1:-1])
    for axis, (n, e, (lo, hi)) in enumerate(zip(spatial, extent, pads, strict=True)):
        if n + lo + hi < e:
            raise layer_error(
                kind,
                f"the input's spatial size {spatial} (input shape {tuple(shape)}) is smaller "
                f"than the {what} {tuple(window)} (extent {tuple(extent)} with dilation) on "
                f"spatial axis {axis}: {n} + padding {lo + hi} < {e}; use padding='SAME' or a "
                f"larger input",
            )


class Window(NamedTuple):
    """A validated window (a kernel or a pooling window) and how it slides.

    ``what`` names it in errors ("kernel", "window"); every field is per spatial axis.
    """

    kind: str
    what: str
    ndim: int
    size: tuple[int, ...]
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: str | Pads

    @classmethod
    def make(cls, kind, what, size, strides, padding, dilation=1, causal_ok=True) -> Window:
        """Validate the arguments of a layer's constructor (raises a ValueError naming it).

        ``strides=None`` means the window's size (pooling's default).
        """
        ndim = window_rank(kind, what if what != "kernel" else "kernel_size", size)
        size = spatial_tuple(kind, what if what != "kernel" else "kernel_size", size, ndim)
        return cls(
            kind,
            what,
            ndim,
            size,
            size if strides is None else spatial_tuple(kind, "strides", strides, ndim),
            spatial_tuple(kind, "dilation", dilation, ndim),
            normalize_padding(kind, padding, ndim, allow_causal=causal_ok),
        )

    @property
    def extent(self) -> tuple[int, ...]:
        """The span of the window once its taps are ``dilation`` apart."""
        return dilated(self.size, self.dilation)

    def pads(self, shape: tuple[int, ...]) -> Pads:
        """Explicit paddings for an input of ``shape``, after checking its rank and size."""
        check_spatial_rank(self.kind, shape, self.ndim)
        pads = resolve_padding(self.padding, tuple(shape[1:-1]), self.extent, self.strides)
        check_window_fits(self.kind, shape, self.size, self.extent, pads, self.what)
        return pads


def ZeroPadding(padding: int | Sequence[int] | Sequence[tuple[int, int]], name=None) -> Layer:
    """Pad the spatial axes of a channels-last input with zeros (Keras ``ZeroPaddingND``).

    Batch and channel axes are never padded.

    Args:
      padding: an int (that many zeros on both sides of every spatial axis, for any number
        of them), one int per spatial axis (symmetric), or one ``(lo, hi)`` pair per
        spatial axis, e.g. ``((top, bottom), (left, right))``; 1 to 3 axes.
      name: the key of the layer in its parent.

    Returns:
      The layer (no params).

    Example:
        >>> import jax.numpy as jnp, jaxnets as jn
        >>> y, _ = jn.ZeroPadding(1).apply({}, {}, jnp.ones((2, 5, 3)), train=False)
        >>> y.shape, float(y[0, 0, 0]), float(y[0, 1, 0])
        ((2, 7, 3), 0.0, 1.0)
    """
    kind = "ZeroPadding"
    check_name(kind, name)
    uniform = 0  # with ndim None: the zeros on each side of every spatial axis
    explicit: Pads = ()  # otherwise: one (lo, hi) pair per spatial axis
    if _is_int(padding):
        if padding < 0:
            raise ValueError(f"{kind}: padding must be non-negative, got {padding}")
        ndim = None
        uniform = int(padding)
    elif isinstance(padding, (tuple, list)) and len(padding) in (1, 2, 3):
        ndim = len(padding)
        explicit = normalize_padding(kind, padding, ndim)
    else:
        message = (
            f"{kind}: padding must be an int, or one int or (lo, hi) pair per spatial axis "
            f"(1 to 3 of them), got {_shown(padding)}"
        )
        raise (ValueError if isinstance(padding, (str, tuple, list)) else TypeError)(message)

    def pairs(shape) -> Pads:
        if ndim is None:
            if len(shape) < 3:
                raise layer_error(
                    kind,
                    f"expected an input (batch, *spatial, channels) of rank >= 3, got shape "
                    f"{tuple(shape)}",
                )
            return ((uniform, uniform),) * (len(shape) - 2)
        check_spatial_rank(kind, shape, ndim)
        return explicit

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        widths = ((0, 0), *pairs(x.shape), (0, 0))
        return jnp.pad(x, widths), state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        if not isinstance(spec, jax.ShapeDtypeStruct):
            raise layer_error(kind, f"expected a single array input, got {type(spec).__name__}")
        pairs(spec.shape)
        return infer_output(apply, {}, {}, spec), {}, {}

    return Layer(init, apply, kind, name)
