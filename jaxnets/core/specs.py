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


def _is_shape(x: Any) -> bool:
    return isinstance(x, (tuple, list)) and all(
        isinstance(d, int) and not isinstance(d, bool) for d in x
    )


def as_spec(spec: SpecLike, dtype: Any = jnp.float32) -> Spec:
    """Normalise a shape, array or ShapeDtypeStruct (or a tuple of them) to specs.

    Example:
        >>> as_spec((2, 3))
        ShapeDtypeStruct(shape=(2, 3), dtype=float32)
    """
    if isinstance(spec, jax.ShapeDtypeStruct):
        return spec
    if _is_shape(spec):
        return jax.ShapeDtypeStruct(tuple(spec), jnp.dtype(dtype))
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
    """The output spec of ``apply`` in inference mode, by abstract evaluation (no FLOPs)."""

    def run(p, s, x):
        return apply(p, s, x, key=None, train=False)[0]

    return jax.eval_shape(run, params, state, spec)


def check_rank(kind: str, spec: jax.ShapeDtypeStruct, min_rank: int, what: str = "") -> None:
    """Raise a LayerError if ``spec`` has fewer than ``min_rank`` dimensions."""
    if not isinstance(spec, jax.ShapeDtypeStruct):
        raise layer_error(kind, f"expected a single array input, got {type(spec).__name__}")
    if len(spec.shape) < min_rank:
        raise layer_error(
            kind,
            f"expected an input of rank >= {min_rank}{what}, got shape {tuple(spec.shape)}",
        )


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values now (not a tracer inside ``jit``/``grad``/``vmap``), so a
    layer can validate data eagerly and document what happens under ``jit`` instead."""
    return not isinstance(x, jax.core.Tracer)


def check_floating(kind: str, x: Any) -> None:
    """Raise a TypeError naming ``kind`` if ``x`` is not a floating-point array."""
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise LayerTypeError(f"{kind}: expected a floating-point input, got dtype {x.dtype}")


def along_last(v: Array, ndim: int) -> Array:
    """Reshape a per-feature vector ``(F,)`` to broadcast against a rank-``ndim`` array
    with features last, without relying on implicit rank promotion."""
    return v.reshape((1,) * (ndim - 1) + v.shape)


# --------------------------------------------------------------------------- keys


@overload
def name_key(key: Array, name: str) -> Array: ...
@overload
def name_key(key: None, name: str) -> None: ...
def name_key(key: Array | None, name: str) -> Array | None:
    """Derive a child's key deterministically from its name (stable under insertions)."""
    if key is None:
        return None
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)
