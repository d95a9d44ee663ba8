"""Position information for attention: sinusoidal and learned embeddings added to the
input, and rotary embeddings applied to queries and keys.

``SinusoidalPositions`` and ``LearnedPositions`` add a vector per position to ``(batch,
time, features)``; with ``stateful=True`` they count the positions already seen in
``state["index"]`` and continue from there (incremental decoding, next to an attention
layer's cache). Rotary embeddings (Su et al. 2021) rotate each pair of features
``(x[i], x[i + d/2])`` by ``position * base**(-2i/d)``; :func:`~jaxnets.MultiHeadAttention`
applies them with ``rotary=True``.

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> layer = jn.LearnedPositions(16)
    >>> spec, params, _ = layer.init(jax.random.key(0), (2, 5, 8))
    >>> spec.shape, params["embedding"].shape
    ((2, 5, 8), (16, 8))
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.core import Layer, as_spec, check_floating, layer_error, param
from jaxnets.core.arguments import count, flag, number
from jaxnets.layers._checks import common, initializer

__all__ = ["LearnedPositions", "SinusoidalPositions", "apply_rotary", "sinusoidal_table"]


def sinusoidal_table(length: int, features: int, base: float = 10_000.0) -> jax.Array:
    """The sinusoidal position table of Vaswani et al. (2017), ``(length, features)``.

    Row ``p`` holds ``sin(p * w_i)`` in its first half and ``cos(p * w_i)`` in its second,
    ``w_i = base**(-2i/features)``.

    Args:
      length: the number of positions.
      features: the size of each vector (even).
      base: the base of the frequencies.

    Returns:
      The float32 table.

    Example:
        >>> sinusoidal_table(3, 4)[0].tolist()
        [0.0, 0.0, 1.0, 1.0]
    """
    half = features // 2
    freqs = base ** (-jnp.arange(half, dtype=jnp.float32) * 2.0 / features)
    angles = jnp.arange(length, dtype=jnp.float32)[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def apply_rotary(x: jax.Array, positions: jax.Array, base: float = 10_000.0) -> jax.Array:
    """Rotary position embedding of ``x`` ``(batch, time, heads, head_dim)``.

    The pair ``(x[..., i], x[..., i + d/2])`` at position ``p`` is rotated by the angle
    ``p * base**(-2i/d)`` (the half-split layout of GPT-NeoX and Llama).

    Args:
      x: queries or keys; ``head_dim`` even.
      positions: ``(time,)`` positions (ints).
      base: the base of the frequencies.

    Returns:
      The rotated array, in ``x``'s dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.ones((1, 2, 1, 2))
        >>> apply_rotary(x, jnp.arange(2))[0, 0, 0].tolist()  # position 0: unchanged
        [1.0, 1.0]
    """
    d = x.shape[-1]
    if d % 2:
        raise layer_error("rotary", f"needs an even head_dim, got {d}")
    half = d // 2
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    freqs = base ** (-jnp.arange(half, dtype=dtype) * 2.0 / d)
    angles = jnp.asarray(positions).astype(dtype)[:, None] * freqs[None, :]
    cos = jnp.cos(angles)[None, :, None, :]
    sin = jnp.sin(angles)[None, :, None, :]
    x1 = x[..., :half].astype(dtype)
    x2 = x[..., half:].astype(dtype)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x.dtype)


def _positions_layer(kind, max_len, stateful, name, table_of, params_of):
    """A layer adding ``table_of(params, features)[index:index + time]`` to its input."""

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        if x.ndim != 3:
            raise layer_error(kind, f"expected (batch, time, features), got shape {tuple(x.shape)}")
        t = x.shape[1]
        if t > max_len:
            raise layer_error(kind, f"the input has {t} positions, more than max_len={max_len}")
        table = table_of(params, x.shape[-1])
        if stateful:
            index = param(state, "index", kind)
            rows = jax.lax.dynamic_slice_in_dim(table, index, t, axis=0)
            state = {"index": index + t}
        else:
            rows = table[:t]
        return x + rows[None].astype(x.dtype), state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        if not isinstance(spec, jax.ShapeDtypeStruct) or len(spec.shape) != 3:
            raise layer_error(kind, f"expected a (batch, time, features) spec, got {spec!r}")
        check_floating(kind, spec)
        if spec.shape[1] > max_len:
            raise layer_error(
                kind, f"the input has {spec.shape[1]} positions, more than max_len={max_len}"
            )
        params = params_of(key, spec.shape[-1])
        state = {"index": jnp.zeros((), jnp.int32)} if stateful else {}
        return spec, params, state

    return Layer(init, apply, kind, name)


def SinusoidalPositions(
    max_len: int,
    *,
    base: float = 10_000.0,
    stateful: bool = False,
    name: str | None = None,
) -> Layer:
    """Add the fixed sinusoidal table (:func:`sinusoidal_table`) to ``(batch, time, F)``.

    Args:
      max_len: the most positions an input may have.
      base: the base of the frequencies.
      stateful: continue from the positions already seen (``state["index"]``).
      name: the key of the layer in its parent.

    Returns:
      The layer (no params; with ``stateful`` its state is ``{"index"}``).

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> layer = jn.SinusoidalPositions(8)
        >>> y, _ = layer.apply({}, {}, jnp.zeros((1, 2, 4)), train=False)
        >>> y[0, 0].tolist()
        [0.0, 0.0, 1.0, 1.0]
    """
    kind = "SinusoidalPositions"
    max_len = count(kind, "max_len", max_len)
    base = number(kind, "base", base, low=0.0, low_open=True)
    stateful = flag(kind, "stateful", stateful)
    common(kind, name=name)

    def table_of(params, features):
        if features % 2:
            raise layer_error(kind, f"needs an even number of features, got {features}")
        return sinusoidal_table(max_len, features, base)

    return _positions_layer(kind, max_len, stateful, name, table_of, lambda key, f: {})


def LearnedPositions(
    max_len: int,
    *,
    embedding_init=None,
    stateful: bool = False,
    param_dtype=jnp.float32,
    name: str | None = None,
) -> Layer:
    """Add a learned vector per position to ``(batch, time, features)`` (as GPT-2, ViT).

    Args:
      max_len: the number of positions the table holds.
      embedding_init: the table's initialiser (default normal, standard deviation 0.02).
      stateful: continue from the positions already seen (``state["index"]``).
      param_dtype: the dtype of the table.
      name: the key of the layer in its parent.

    Returns:
      The layer; its params are ``embedding`` ``(max_len, features)``.
    """
    kind = "LearnedPositions"
    max_len = count(kind, "max_len", max_len)
    stateful = flag(kind, "stateful", stateful)
    common(kind, name=name, dtype=param_dtype)
    initializer(kind, "embedding_init", embedding_init)
    init_fn = embedding_init or jax.nn.initializers.normal(0.02)

    def table_of(params, features):
        return param(params, "embedding", kind, (max_len, features))

    def params_of(key, features):
        return {"embedding": init_fn(key, (max_len, features), param_dtype)}

    return _positions_layer(kind, max_len, stateful, name, table_of, params_of)
