"""Multi-head attention (Vaswani et al. 2017): self and cross attention, masks, grouped-query
heads, rotary positions and a key/value cache for incremental decoding.

The attention core is the op ``dot_product_attention``: its reference is the einsum and
softmax below; ``jaxnets._impl.attention`` registers ``jax.nn.dot_product_attention`` beside
it (cuDNN's fused kernel on NVIDIA GPUs where it applies, XLA's form elsewhere), chosen by
``impl=`` (``docs/implementations.md``). ``docs/attention.md`` describes the input forms.

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> layer = jn.MultiHeadAttention(4, causal=True)
    >>> spec, params, _ = layer.init(jax.random.key(0), (2, 5, 8))
    >>> spec.shape, params["query"]["kernel"].shape, params["output"]["kernel"].shape
    ((2, 5, 8), (8, 4, 2), (4, 2, 8))
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxnets import _impl
from jaxnets._impl import attention as _registered  # noqa: F401  (registers the fused forms)
from jaxnets.core import Layer, as_spec, infer_output, layer_error, param
from jaxnets.core.arguments import count, flag, number
from jaxnets.layers._checks import common, initializer
from jaxnets.layers.attention_inputs import (
    AttentionInput,
    check_cache,
    parse_input,
    query_spec,
)
from jaxnets.layers.positional import apply_rotary

__all__ = ["MultiHeadAttention", "dot_product_attention"]


def dot_product_attention(q, k, v, mask, lengths, key, causal, scale, rate):
    """The reference attention core: ``softmax(q k^T * scale + masks) v`` per head.

    Args:
      q: queries ``(batch, T, heads, head_dim)``.
      k: keys ``(batch, S, kv_heads, head_dim)``; ``heads`` is a multiple of ``kv_heads``
        (each key/value head serves ``heads // kv_heads`` query heads).
      v: values, shaped as ``k``.
      mask: None or a boolean ``(batch, 1 or heads, T, S)``: True where a query may attend.
      lengths: None or int32 ``(batch,)``: keys at positions ``>= lengths`` are masked.
      key: the PRNG key of attention dropout (None: no dropout).
      causal: query ``t`` attends to keys ``s <= t`` only (needs ``T == S``).
      scale: the logits' factor (``1/sqrt(head_dim)`` in the layer).
      rate: the attention dropout rate (used with ``key``).

    Returns:
      ``(batch, T, heads, head_dim)`` in ``q``'s dtype. A query with no key to attend
      to averages all values (its logits are all the same large negative number).

    Example:
        >>> import jax.numpy as jnp
        >>> q = jnp.ones((1, 3, 2, 4))
        >>> dot_product_attention(q, q, q, None, None, None, True, 0.5, 0.0).shape
        (1, 3, 2, 4)
    """
    heads, kv_heads = q.shape[2], k.shape[2]
    if kv_heads != heads:
        k = jnp.repeat(k, heads // kv_heads, axis=2)
        v = jnp.repeat(v, heads // kv_heads, axis=2)
    dtype = jnp.promote_types(q.dtype, jnp.float32)  # softmax in float32 at least
    logits = jnp.einsum("bthd,bshd->bhts", q, k).astype(dtype) * scale
    allowed = full_mask(mask, lengths, causal, q.shape[0], q.shape[1], k.shape[1])
    if allowed is not None:
        logits = jnp.where(allowed, logits, jnp.finfo(dtype).min)
    weights = jax.nn.softmax(logits, axis=-1)
    if key is not None and rate > 0.0:
        keep = jax.random.bernoulli(key, 1.0 - rate, weights.shape)
        weights = jnp.where(keep, weights / (1.0 - rate), 0.0)
    return jnp.einsum("bhts,bshd->bthd", weights.astype(v.dtype), v)


def full_mask(mask, lengths, causal: bool, batch: int, t: int, s: int):
    """The boolean ``(batch, 1 or heads, T, S)`` of allowed (query, key) pairs, or None.

    Args:
      mask: None or a boolean ``(batch, 1 or heads, T, S)``.
      lengths: None or ``(batch,)`` key lengths.
      causal: add the causal (lower-triangular) mask.
      batch: the batch size.
      t: the number of queries.
      s: the number of keys.

    Returns:
      The conjunction of the given masks, or None when there is none.
    """
    allowed = mask
    if lengths is not None:
        valid = (jnp.arange(s)[None, :] < lengths[:, None])[:, None, None, :]
        allowed = valid if allowed is None else allowed & valid
    if causal:
        tri = (jnp.arange(s)[None, :] <= jnp.arange(t)[:, None])[None, None]
        allowed = tri if allowed is None else allowed & tri
    if allowed is not None:
        allowed = jnp.broadcast_to(allowed, (batch, allowed.shape[1], t, s))
    return allowed


_impl.define_op("dot_product_attention", dot_product_attention, layer="MultiHeadAttention")


def _dense_init(in_axis, out_axis):
    return jax.nn.initializers.glorot_uniform(in_axis=in_axis, out_axis=out_axis)


def MultiHeadAttention(
    heads: int,
    head_dim: int | None = None,
    *,
    num_kv_heads: int | None = None,
    out_features: int | None = None,
    cross: bool = False,
    causal: bool = False,
    dropout: float = 0.0,
    rotary: bool = False,
    rotary_base: float = 10_000.0,
    cache_size: int | None = None,
    use_bias: bool = True,
    kernel_init=None,
    bias_init=jax.nn.initializers.zeros,
    param_dtype=jnp.float32,
    impl: str = "auto",
    name: str | None = None,
) -> Layer:
    """Multi-head scaled dot-product attention, in Keras's and flax's weight layout.

    Inputs: self attention takes ``x`` ``(batch, T, features)`` or ``(x, lengths_or_mask)``;
    cross attention (``cross=True``) takes ``(x, context)`` or ``(x, context,
    lengths_or_mask)`` with ``context`` ``(batch, S, context_features)``. ``lengths_or_mask``
    is key lengths ``(batch,)``, a key padding mask ``(batch, S)`` (positive: valid), as the
    recurrent layers take them, or a boolean attention mask ``(batch, T, S)`` or ``(batch,
    heads, T, S)`` (True: may attend). The output is ``(batch, T, out_features)``.

    Args:
      heads: the number of query heads.
      head_dim: the size of each head (default ``features // heads``).
      num_kv_heads: the number of key/value heads (grouped-query attention; a divisor of
        ``heads``; default ``heads``).
      out_features: the output size (default: the input's features).
      cross: attend from ``x`` to a separate ``context``.
      causal: position ``t`` attends to positions ``<= t`` only (self attention).
      dropout: the rate of dropout on the attention weights in training, in [0, 1).
      rotary: rotate queries and keys by their positions (RoPE, Su et al. 2021).
      rotary_base: the base of the rotary frequencies.
      cache_size: keep a key/value cache of this many positions in ``state`` for
        incremental decoding (self attention, plain ``x`` input): each call appends its
        keys and values and attends to everything cached so far.
      use_bias: add biases to the projections.
      kernel_init: the kernels' initialiser (default Glorot uniform over the fans).
      bias_init: the biases' initialiser.
      param_dtype: the params' dtype.
      impl: "auto", "reference", "xla" or "cudnn" (``docs/implementations.md``).
      name: the key of the layer in its parent.

    Returns:
      The layer; its params are ``query``, ``key``, ``value`` (``kernel`` ``(in, heads,
      head_dim)``, ``bias`` ``(heads, head_dim)``) and ``output`` (``kernel`` ``(heads,
      head_dim, out)``, ``bias`` ``(out,)``), as Keras's ``MultiHeadAttention`` and flax's
      ``MultiHeadDotProductAttention`` hold them; with ``cache_size`` the state holds
      ``key``, ``value`` ``(batch, cache_size, kv_heads, head_dim)`` and ``index``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> layer = jn.MultiHeadAttention(2, 3, num_kv_heads=1)
        >>> _, params, _ = layer.init(jax.random.key(0), (1, 4, 6))
        >>> params["key"]["kernel"].shape
        (6, 1, 3)
    """
    kind = "MultiHeadAttention"
    heads = count(kind, "heads", heads)
    head_dim = None if head_dim is None else count(kind, "head_dim", head_dim)
    kv_heads = heads if num_kv_heads is None else count(kind, "num_kv_heads", num_kv_heads)
    if heads % kv_heads:
        raise ValueError(f"{kind}: num_kv_heads must divide heads ({heads}), got {kv_heads}")
    out_features = None if out_features is None else count(kind, "out_features", out_features)
    cross, causal, rotary = (
        flag(kind, n, v) for n, v in (("cross", cross), ("causal", causal), ("rotary", rotary))
    )
    rate = number(kind, "dropout", dropout, low=0.0, high=1.0, high_open=True)
    rotary_base = number(kind, "rotary_base", rotary_base, low=0.0, low_open=True)
    cache_size = None if cache_size is None else count(kind, "cache_size", cache_size)
    common(kind, name=name, dtype=param_dtype, use_bias=use_bias)
    initializer(kind, "kernel_init", kernel_init)
    initializer(kind, "bias_init", bias_init, optional=False)
    _impl.check_impl("dot_product_attention", impl)
    if cross and (causal or cache_size is not None):
        raise ValueError(f"{kind}: cross attention takes neither causal=True nor cache_size")

    def dims(features: int) -> tuple[int, int]:
        d = head_dim
        if d is None:
            if features % heads:
                raise layer_error(
                    kind,
                    f"the input has {features} features, not a multiple of heads={heads}; "
                    f"give head_dim",
                )
            d = features // heads
        return d, out_features or features

    def project(params, name_, x, d, n):
        kernel = param(params[name_], "kernel", kind, (x.shape[-1], n, d))
        y = jnp.einsum("btf,fhd->bthd", x, kernel.astype(x.dtype))
        if use_bias:
            y = y + param(params[name_], "bias", kind, (n, d)).astype(x.dtype)[None, None]
        return y

    def apply(params, state, x, *, key=None, train):
        inp: AttentionInput = parse_input(kind, x, cross)
        if cache_size is not None and inp.extra is not None:
            raise layer_error(kind, "a layer with cache_size takes a plain x (no mask)")
        q_in, kv_in = inp.x, inp.context
        d, out = dims(q_in.shape[-1])
        q = project(params, "query", q_in, d, heads)
        k = project(params, "key", kv_in, d, kv_heads)
        v = project(params, "value", kv_in, d, kv_heads)
        batch, t = q.shape[:2]
        offset = state["index"] if cache_size is not None else 0
        if rotary:
            positions = offset + jnp.arange(t)
            q = apply_rotary(q, positions, rotary_base)
            k = apply_rotary(k, positions, rotary_base)
        mask, lengths, is_causal = inp.mask, inp.lengths, causal
        new_state = state
        if cache_size is not None:
            check_cache(kind, state, (batch, cache_size, kv_heads, d), t)
            zero = jnp.zeros((), offset.dtype)
            start = (zero, offset, zero, zero)
            k = jax.lax.dynamic_update_slice(state["key"], k.astype(state["key"].dtype), start)
            v = jax.lax.dynamic_update_slice(state["value"], v.astype(state["value"].dtype), start)
            new_state = {"key": k, "value": v, "index": offset + t}
            k, v = k.astype(q.dtype), v.astype(q.dtype)
            s_pos, t_pos = jnp.arange(cache_size)[None, :], offset + jnp.arange(t)[:, None]
            allowed = (s_pos <= t_pos) if causal else (s_pos < offset + t)
            mask, is_causal = jnp.broadcast_to(allowed, (t, cache_size))[None, None], False
        drop_key = None
        if train and rate > 0.0:
            if key is None:
                raise layer_error(kind, "attention dropout in training needs key=")
            drop_key = key
        args = (q, k, v, mask, lengths, drop_key, is_causal, 1.0 / math.sqrt(d), rate)
        y = (_impl.choose("dot_product_attention", impl, *args).fn or dot_product_attention)(*args)
        kernel = param(params["output"], "kernel", kind, (heads, d, out))
        y = jnp.einsum("bthd,hdo->bto", y, kernel.astype(y.dtype))
        if use_bias:
            y = y + param(params["output"], "bias", kind, (out,)).astype(y.dtype)[None, None]
        return y, new_state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        x_spec, kv_spec = query_spec(kind, spec, cross)
        d, out = dims(x_spec.shape[-1])
        keys = jax.random.split(key, 4)
        qkv_init = kernel_init or _dense_init(0, (1, 2))
        out_init = kernel_init or _dense_init((0, 1), 2)
        params = {}
        for i, (n, f, h) in enumerate(
            (
                ("query", x_spec.shape[-1], heads),
                ("key", kv_spec.shape[-1], kv_heads),
                ("value", kv_spec.shape[-1], kv_heads),
            )
        ):
            params[n] = {"kernel": qkv_init(keys[i], (f, h, d), param_dtype)}
            if use_bias:
                params[n]["bias"] = bias_init(keys[i], (h, d), param_dtype)
        params["output"] = {"kernel": out_init(keys[3], (heads, d, out), param_dtype)}
        if use_bias:
            params["output"]["bias"] = bias_init(keys[3], (out,), param_dtype)
        state = {}
        if cache_size is not None:
            shape = (x_spec.shape[0], cache_size, kv_heads, d)
            zeros = jnp.zeros(shape, x_spec.dtype)
            state = {"key": zeros, "value": zeros, "index": jnp.zeros((), jnp.int32)}
        return infer_output(apply, params, state, spec), params, state

    return Layer(init, apply, kind, name)
