"""Shape specs, the checks layers make on them, and child keys."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any, overload

import jax
import jax.numpy as jnp

from jaxnets.core.contract import (
    ApplyFn,
    Array,
    LayerTypeError,
    Params,
    Spec,
    SpecLike,
    State,
    layer_error,
)
from jaxnets.core.door import _looks_like_shape, shape_dims


def _is_shape(x: Any) -> bool:
    """A tuple or list of positive Python ints (a bare shape that needs no conversion)."""
    return isinstance(x, (tuple, list)) and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in x
    )


def as_spec(spec: SpecLike, dtype: Any = jnp.float32) -> Spec:
    """Normalise a shape, array or ShapeDtypeStruct (or a tuple of them) to specs.

    Args:
      spec: a shape (tuple or list of ints), a ShapeDtypeStruct, anything with ``shape``
        and ``dtype``, or a tuple, list or mapping of those.
      dtype: the dtype given to bare shapes.

    Returns:
      A ShapeDtypeStruct, or a tuple (or dict) of them mirroring ``spec``.

    Raises:
      TypeError: for anything else, or a dim of a shape that is not an int (a bool, a
        float); NumPy integers are accepted.
      ValueError: a dim of a shape that is 0 or negative.

    Example:
        >>> as_spec((2, 3))
        ShapeDtypeStruct(shape=(2, 3), dtype=float32)
    """
    if isinstance(spec, jax.ShapeDtypeStruct):
        return spec
    if _is_shape(spec):
        return jax.ShapeDtypeStruct(tuple(spec), jnp.dtype(dtype))
    if _looks_like_shape(spec):  # a shape with a dim that is not a positive int
        return jax.ShapeDtypeStruct(shape_dims("input_spec", spec), jnp.dtype(dtype))
    if hasattr(spec, "shape") and hasattr(spec, "dtype"):
        return jax.ShapeDtypeStruct(tuple(spec.shape), spec.dtype)
    if isinstance(spec, (tuple, list)):
        return tuple(as_spec(s, dtype) for s in spec)
    if isinstance(spec, Mapping):
        return {k: as_spec(v, dtype) for k, v in spec.items()}
    raise TypeError(
        f"input_spec must be a shape tuple, a jax.ShapeDtypeStruct, an array or a tuple "
        f"of those; got {type(spec).__name__}: {spec!r}"
    )


def infer_output(apply: ApplyFn, params: Params, state: State, spec: Spec) -> Spec:
    """The output spec of ``apply`` in inference mode, by abstract evaluation (no FLOPs).

    Args:
      apply: the layer's apply function, called with ``key=None, train=False``.
      params: the params (arrays or ShapeDtypeStructs).
      state: the state (arrays or ShapeDtypeStructs).
      spec: the input spec.

    Returns:
      The output's ShapeDtypeStruct (or pytree of them).
    """

    def run(p, s, x):
        return apply(p, s, x, key=None, train=False)[0]

    return jax.eval_shape(run, params, state, spec)


def check_rank(kind: str, spec: jax.ShapeDtypeStruct, min_rank: int, what: str = "") -> None:
    """Raise a LayerError if ``spec`` has fewer than ``min_rank`` dimensions.

    Args:
      kind: the layer type, for the error message.
      spec: the input spec; it must be a single ShapeDtypeStruct.
      min_rank: the smallest rank allowed.
      what: text added after the rank in the message (e.g. " (batch, features)").

    Raises:
      LayerError: when ``spec`` is not a single spec or has too few dimensions.
    """
    if not isinstance(spec, jax.ShapeDtypeStruct):
        raise layer_error(kind, f"expected a single array input, got {type(spec).__name__}")
    if len(spec.shape) < min_rank:
        raise layer_error(
            kind,
            f"expected an input of rank >= {min_rank}{what}, got shape {tuple(spec.shape)}",
        )


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values now (not a tracer inside ``jit``/``grad``/``vmap``), so a
    layer can validate data eagerly and document what happens under ``jit`` instead.

    Args:
      x: any value.

    Returns:
      False for a JAX tracer, True otherwise.
    """
    return not isinstance(x, jax.core.Tracer)


def check_floating(kind: str, x: Any) -> None:
    """Raise a TypeError naming ``kind`` if ``x`` is not a floating-point array.

    Args:
      kind: the layer type, for the error message.
      x: an array or spec (anything with a ``dtype``).

    Raises:
      LayerTypeError: when the dtype of ``x`` is not floating-point.
    """
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise LayerTypeError(f"{kind}: expected a floating-point input, got dtype {x.dtype}")


def along_last(v: Array, ndim: int) -> Array:
    """Reshape a per-feature vector ``(F,)`` to broadcast against a rank-``ndim`` array
    with features last, without relying on implicit rank promotion.

    Args:
      v: the vector.
      ndim: the rank of the array it will combine with.

    Returns:
      ``v`` reshaped to ``(1, ..., 1, F)`` with ``ndim`` axes.
    """
    return v.reshape((1,) * (ndim - 1) + v.shape)


# --------------------------------------------------------------------------- keys


@overload
def name_key(key: Array, name: str) -> Array: ...
@overload
def name_key(key: None, name: str) -> None: ...
def name_key(key: Array | None, name: str) -> Array | None:
    """Derive a child's key deterministically from its name (stable under insertions).

    Args:
      key: the parent's key, or None.
      name: the child's name, folded in through its CRC-32.

    Returns:
      The child's key, or None when ``key`` is None.
    """
    if key is None:
        return None
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)
