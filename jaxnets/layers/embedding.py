"""Embedding: a lookup table from integer token ids to learned vectors."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core import (
    Layer,
    LayerTypeError,
    as_spec,
    infer_output,
    is_concrete,
    layer_error,
    param,
)
from jaxnets.core.arguments import count, flag
from jaxnets.layers._checks import common, initializer

Initializer = Callable[..., jax.Array]


def Embedding(
    num_embeddings: int,
    features: int,
    *,
    embedding_init: Initializer | None = None,
    mask_zero: bool = False,
    param_dtype=jnp.float32,
    name: str | None = None,
) -> Layer:
    """Map integer ids ``(...)`` to vectors ``(..., features)``: row ``id`` of ``embedding``.

    The output has the table's dtype. Through ``serial``, pass the input spec as an integer
    ``jax.ShapeDtypeStruct`` (a bare shape means float32). A tuple ``(ids, lengths_or_mask,
    ...)`` gives ``(vectors, lengths_or_mask, ...)``, so padding information reaches a
    recurrent layer after it in a ``serial``. With ``mask_zero=True`` (Keras's option), id 0
    means padding: ids ``(batch, time)`` give ``(vectors, ids != 0)``, a mask the recurrent
    layers take.

    Ids outside ``[0, num_embeddings)`` (negative ones included, which NumPy would wrap):
    when the ids are concrete (an eager call) the layer raises a LayerError naming the
    offending values; under ``jit`` they cannot be inspected, so their rows come out as
    **NaN**, which a loss turns into NaN (``jaxnets.fit`` then stops naming the step)
    instead of silently reading another row.

    Args:
      num_embeddings: the number of rows of the table (ids lie in ``[0, num_embeddings)``).
      features: the size of each vector.
      embedding_init: the table's initialiser (default as flax's: normal with variance
        ``1 / features``, ``variance_scaling(1, "fan_in", "normal", out_axis=0)``).
      mask_zero: output ``(vectors, mask)`` with the mask true where the id is not 0 (the
        input must then be the ids alone).
      param_dtype: the dtype of the table.
      name: the key of the layer in its parent.

    Returns:
      The layer; its params are ``embedding`` (num_embeddings, features), laid out as
      flax's ``nn.Embed`` and Keras' ``Embedding``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> embed = jn.Embedding(10, 3)
        >>> spec, params, _ = embed.init(jax.random.key(0), jax.ShapeDtypeStruct((2, 5), jnp.int32))
        >>> spec.shape, params["embedding"].shape
        ((2, 5, 3), (10, 3))
        >>> y = jax.jit(lambda i: embed.apply(params, {}, i, train=False)[0])(jnp.array([1, 10]))
        >>> bool(jnp.isnan(y[1]).all()), bool(jnp.isnan(y[0]).any())
        (True, False)
        >>> masked = jn.Embedding(10, 3, mask_zero=True)
        >>> (_, mask), _ = masked.apply(params, {}, jnp.array([[4, 0]]), train=False)
        >>> mask.tolist()
        [[True, False]]
    """
    kind = "Embedding"
    num_embeddings = count(kind, "num_embeddings", num_embeddings)
    features = count(kind, "features", features)
    common(kind, name=name, dtype=param_dtype)
    flag(kind, "mask_zero", mask_zero)
    initializer(kind, "embedding_init", embedding_init)
    if embedding_init is None:
        embedding_init = jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)

    def check_ids(ids) -> None:
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise LayerTypeError(
                f"{kind}: expected integer token ids, got dtype {ids.dtype} (cast with "
                f".astype(jnp.int32) if the values are ids)"
            )

    def apply(params, state, ids, *, key=None, train):
        if isinstance(ids, (tuple, list)):  # (ids, lengths_or_mask, ...): pass the rest on
            if mask_zero:
                raise layer_error(
                    kind, "with mask_zero=True the input is the ids alone; the mask comes from them"
                )
            y, state = apply(params, state, ids[0], key=key, train=train)
            return (y, *ids[1:]), state
        ids = jnp.asarray(ids) if isinstance(ids, np.ndarray) else ids
        check_ids(ids)
        table = jnp.asarray(param(params, "embedding", kind, (num_embeddings, features)))
        if is_concrete(ids):
            values = np.asarray(ids)
            bad = values[(values < 0) | (values >= num_embeddings)]
            if bad.size:
                raise layer_error(
                    kind,
                    f"token ids must lie in [0, {num_embeddings}), got {bad.size} outside "
                    f"(for example {sorted(set(bad.tolist()))[:5]})",
                )
        inside = (ids >= 0) & (ids < num_embeddings)
        # clipped ids are in bounds, so the gather and its gradient skip bounds handling
        rows = table.at[jnp.clip(ids, 0, num_embeddings - 1)].get(mode="promise_in_bounds")
        y = jnp.where(inside[..., None], rows, jnp.asarray(jnp.nan, rows.dtype))
        return ((y, ids != 0) if mask_zero else y), state

    def init(key, input_spec):
        spec = as_spec(input_spec, jnp.int32)
        ids_spec = spec[0] if isinstance(spec, tuple) else spec
        if not isinstance(ids_spec, jax.ShapeDtypeStruct):
            raise layer_error(kind, f"expected an array of token ids, got {spec!r}")
        check_ids(ids_spec)
        params = {"embedding": embedding_init(key, (num_embeddings, features), param_dtype)}
        return infer_output(apply, params, {}, spec), params, {}

    return Layer(init, apply, kind, name)
