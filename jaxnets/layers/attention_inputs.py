"""The input forms of :func:`~jaxnets.MultiHeadAttention`: queries, a context, and masks.

Self attention takes ``x`` or ``(x, lengths_or_mask)``; cross attention ``(x, context)`` or
``(x, context, lengths_or_mask)``. ``lengths_or_mask`` is key lengths ``(batch,)``, a key
padding mask ``(batch, S)`` (positive: valid), or a boolean attention mask ``(batch, T, S)``
or ``(batch, 1 or heads, T, S)`` (True: may attend).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core import LayerTypeError, is_concrete, layer_error, param


class AttentionInput(NamedTuple):
    """An attention layer's input, split.

    Attributes:
      x: the queries' source ``(batch, T, features)``.
      context: the keys' and values' source (``x`` itself in self attention).
      extra: the ``lengths_or_mask`` given, or None.
      mask: a boolean ``(batch, 1 or heads, T, S)``, or None.
      lengths: int32 key lengths ``(batch,)``, or None.
    """

    x: Any
    context: Any
    extra: Any
    mask: Any
    lengths: Any


def _forms(cross: bool) -> str:
    if cross:
        return "(x, context) or (x, context, lengths_or_mask)"
    return "x or (x, lengths_or_mask)"


def _split(kind: str, x, cross: bool):
    parts = list(x) if isinstance(x, (tuple, list)) else [x]
    allowed = (2, 3) if cross else (1, 2)
    if len(parts) not in allowed:
        raise layer_error(kind, f"expected {_forms(cross)}, got a tuple of {len(parts)}")
    context = parts[1] if cross else parts[0]
    extra = parts[-1] if len(parts) == allowed[1] else None
    return parts[0], context, extra


def _check_sequence(kind: str, what: str, x) -> None:
    shape = tuple(getattr(x, "shape", ()))
    if not hasattr(x, "dtype") or len(shape) != 3:
        raise layer_error(
            kind, f"expected {what} of shape (batch, time, features), got shape {shape}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise LayerTypeError(
            f"{kind}: expected a floating-point {what}, got dtype {x.dtype} (token ids go "
            f"through an Embedding first)"
        )


def query_spec(kind: str, spec, cross: bool):
    """The specs of the queries' and the keys' sources, checked.

    Args:
      kind: the layer's name, for messages.
      spec: the whole input spec.
      cross: whether the layer is a cross attention.

    Returns:
      ``(x_spec, context_spec)``.
    """
    x, context, _ = _split(kind, spec, cross)
    _check_sequence(kind, "x", x)
    _check_sequence(kind, "context", context)
    if context.shape[0] != x.shape[0]:
        raise layer_error(
            kind, f"x has batch {x.shape[0]} but the context has batch {context.shape[0]}"
        )
    return x, context


def _lengths(kind: str, v, batch: int, s: int):
    if not jnp.issubdtype(v.dtype, jnp.integer):
        raise LayerTypeError(f"{kind}: lengths must be integers, got dtype {v.dtype}")
    if is_concrete(v):
        values = np.asarray(v)
        if values.size and (values.min() < 0 or values.max() > s):
            raise layer_error(
                kind,
                f"lengths must lie in [0, {s}] (the number of keys), got min {values.min()} "
                f"and max {values.max()}",
            )
    return jnp.asarray(v).astype(jnp.int32)


def parse_input(kind: str, x, cross: bool) -> AttentionInput:
    """Split and check an attention layer's input (see the module's docstring).

    Args:
      kind: the layer's name, for messages.
      x: the input.
      cross: whether the layer is a cross attention.

    Returns:
      The :class:`AttentionInput`.

    Raises:
      LayerError: for a wrong form or shape.
      LayerTypeError: for non-floating sequences or non-integer lengths.
    """
    q, context, extra = _split(kind, x, cross)
    query_spec(kind, (q, context) if cross else q, cross)
    batch, t, s = q.shape[0], q.shape[1], context.shape[1]
    mask = lengths = None
    if extra is not None:
        shape = tuple(getattr(extra, "shape", ()))
        if len(shape) == 1 and shape == (batch,):
            lengths = _lengths(kind, extra, batch, s)
        elif len(shape) == 2 and shape == (batch, s):
            mask = (jnp.asarray(extra) > 0)[:, None, None, :]
        elif len(shape) in (3, 4) and shape[0] == batch and shape[-2:] == (t, s):
            if jnp.asarray(extra).dtype != jnp.bool_:
                raise LayerTypeError(
                    f"{kind}: an attention mask (batch, T, S) must be boolean, got dtype "
                    f"{extra.dtype}"
                )
            mask = extra[:, None] if len(shape) == 3 else extra
        else:
            raise layer_error(
                kind,
                f"lengths_or_mask must be lengths ({batch},), a padding mask ({batch}, {s}) "
                f"or a boolean attention mask ({batch}, {t}, {s}) or ({batch}, heads, {t}, "
                f"{s}), got shape {shape}",
            )
    return AttentionInput(q, context, extra, mask, lengths)


def check_cache(kind: str, state, shape: tuple[int, ...], t: int) -> None:
    """Check a key/value cache in ``state`` against the expected shape and free room.

    Args:
      kind: the layer's name, for messages.
      state: the layer's state ``{"key", "value", "index"}``.
      shape: the expected ``(batch, cache_size, kv_heads, head_dim)``.
      t: the number of new positions.

    Raises:
      LayerError: when the cache was initialised for another batch, or (for a concrete
        index) when the new positions do not fit.
    """
    cache = param(state, "key", kind)
    if tuple(cache.shape) != shape:
        raise layer_error(
            kind,
            f"the cache has shape {tuple(cache.shape)}, expected {shape}; initialise the "
            f"state for this batch size (layer.init with that input spec)",
        )
    index = param(state, "index", kind)
    if not isinstance(index, jax.core.Tracer) and int(index) + t > shape[1]:
        raise layer_error(
            kind,
            f"the cache holds {shape[1]} positions; {int(index)} are filled and {t} more came",
        )
