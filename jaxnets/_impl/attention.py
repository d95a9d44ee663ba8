"""Attention through ``jax.nn.dot_product_attention``: cuDNN's fused (flash) kernel on NVIDIA
GPUs where it applies, and XLA's form everywhere.

Both take the reference's arguments (``jaxnets.layers.attention.dot_product_attention``)
and hand the masks over in the forms JAX knows: ``is_causal``, key lengths and a boolean
mask. Neither does attention dropout, and both compute in float32 at most; where dropout
is active or the inputs are float64, ``auto`` keeps the reference. ``cudnn`` is a
``custom_vjp`` inside JAX (reverse mode and batching only) and needs half-precision
inputs, a head size that is a multiple of 8 up to 128, and no arbitrary mask.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets._impl.context import platforms_of
from jaxnets._impl.registry import TRANSFORMS, register


def _xla_applies(q, k, v, mask, lengths, key, causal, scale, rate) -> str | None:
    if key is not None and rate > 0.0:
        return "does not do attention dropout (use dropout=0 or impl='reference')"
    if jnp.dtype(q.dtype) == jnp.dtype(jnp.float64):
        return "computes in float32, which would lose float64's precision"
    return None


def _cudnn_applies(q, k, v, mask, lengths, key, causal, scale, rate) -> str | None:
    why = _xla_applies(q, k, v, mask, lengths, key, causal, scale, rate)
    if why is not None:
        return why
    if not platforms_of(q) <= {"gpu", "cuda"}:
        return f"needs an NVIDIA GPU (cuDNN), the arrays are on {sorted(platforms_of(q))}"
    if jnp.dtype(q.dtype) not in (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16)):
        return f"needs float16 or bfloat16 inputs, got {q.dtype}"
    d = q.shape[-1]
    if d % 8 or d > 128:
        return f"needs a head size that is a multiple of 8 up to 128, got {d}"
    if mask is not None:
        return "takes causal masks and lengths, not an arbitrary boolean mask"
    return None


def _call(implementation, q, k, v, mask, lengths, causal, scale):
    kv_lengths = None if lengths is None else jnp.asarray(lengths, jnp.int32)
    if kv_lengths is not None and implementation == "cudnn":
        # cuDNN reads the query lengths too: every query is valid
        q_lengths = jnp.full((q.shape[0],), q.shape[1], jnp.int32)
    else:
        q_lengths = None
    return jax.nn.dot_product_attention(
        q,
        k,
        v,
        mask=mask,
        scale=scale,
        is_causal=causal,
        query_seq_lengths=q_lengths,
        key_value_seq_lengths=kv_lengths,
        implementation=implementation,
    )


@register(
    "dot_product_attention",
    "cudnn",
    platforms={"gpu", "cuda"},
    transforms={"reverse", "vmap"},
    applies=_cudnn_applies,
)
def cudnn(q, k, v, mask, lengths, key, causal, scale, rate):
    """Attention by cuDNN's fused kernel (``implementation="cudnn"``)."""
    return _call("cudnn", q, k, v, mask, lengths, causal, scale)


@register(
    "dot_product_attention", "xla", platforms=None, transforms=TRANSFORMS, applies=_xla_applies
)
def xla(q, k, v, mask, lengths, key, causal, scale, rate):
    """Attention by XLA's form of ``jax.nn.dot_product_attention``."""
    return _call("xla", q, k, v, mask, lengths, causal, scale)
