"""The pre-norm Transformer block: attention and an MLP, each ``x + dropout(f(norm(x)))``.

The encoder form attends over its own input (``causal=True`` for a language model); the
decoder form (``cross=True``) adds cross attention to a context between the two.
A block maps its input to an output of the same structure, so a stack of identical blocks
is ``jn.repeat(block, n)``: one traced block in a loop, whose compile time does not grow
with depth (``docs/attention.md``).

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> stack = jn.repeat(jn.TransformerBlock(4, 32, causal=True), 3)
    >>> spec, params, _ = stack.init(jax.random.key(0), (2, 6, 16))
    >>> spec.shape, params["attention"]["query"]["kernel"].shape
    ((2, 6, 16), (3, 16, 4, 4))
"""

from __future__ import annotations

from typing import Any

import jax

from jaxnets.core import Layer, apply_child, as_spec, init_child, layer_error
from jaxnets.core.arguments import choice, count, flag, number
from jaxnets.layers._checks import check_name
from jaxnets.layers.attention import MultiHeadAttention
from jaxnets.layers.dense import Dense
from jaxnets.layers.norm import LayerNorm

__all__ = ["TransformerBlock"]


def _gelu(x):
    return jax.nn.gelu(x, approximate=False)


def TransformerBlock(
    heads: int,
    mlp_dim: int | None = None,
    *,
    head_dim: int | None = None,
    num_kv_heads: int | None = None,
    mlp: str = "gelu",
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    causal: bool = False,
    cross: bool = False,
    rotary: bool = False,
    cache_size: int | None = None,
    epsilon: float = 1e-5,
    use_bias: bool = True,
    impl: str = "auto",
    name: str | None = None,
) -> Layer:
    """A pre-norm Transformer block (as GPT-2 and ViT): ``x + attn(norm(x))``, then
    ``x + mlp(norm(x))``, with dropout on each branch's output in training.

    Inputs: ``x`` ``(batch, T, d_model)`` or ``(x, lengths_or_mask)``; with ``cross=True``
    ``(x, context)`` or ``(x, context, context_lengths_or_mask)``. The output has the
    structure of the input, with ``x`` replaced by the block's result (the other parts
    pass through unchanged), so blocks stack with ``serial`` or ``repeat``.

    Args:
      heads: the attention heads.
      mlp_dim: the hidden width of the MLP (default ``4 * d_model``).
      head_dim: the size of each head (default ``d_model // heads``).
      num_kv_heads: key/value heads of the self attention (grouped-query attention).
      mlp: "gelu" (``Dense, GELU, Dense``) or "swiglu" (``silu(x W_gate) * (x W_up)``,
        then ``W_down``; Shazeer 2020).
      dropout: the dropout rate on each branch's output, in [0, 1).
      attention_dropout: the dropout rate on the attention weights, in [0, 1).
      causal: causal self attention.
      cross: add cross attention to a context (the decoder form).
      rotary: rotary position embeddings in the self attention.
      cache_size: a key/value cache of this many positions in the self attention's state.
      epsilon: the LayerNorms' epsilon.
      use_bias: biases in the projections and the MLP.
      impl: the attention core's implementation (``MultiHeadAttention``'s ``impl``).
      name: the key of the layer in its parent.

    Returns:
      The layer; its params are ``attention_norm``, ``attention``, (``cross_norm``,
      ``cross_attention``,) ``mlp_norm``, ``mlp_in`` (with "swiglu" also ``mlp_gate``)
      and ``mlp_out``.
    """
    kind = "TransformerBlock"
    heads = count(kind, "heads", heads)
    mlp_dim = None if mlp_dim is None else count(kind, "mlp_dim", mlp_dim)
    mlp = choice(kind, "mlp", mlp, ("gelu", "swiglu"))
    rate = number(kind, "dropout", dropout, low=0.0, high=1.0, high_open=True)
    cross = flag(kind, "cross", cross)
    check_name(kind, name)
    attention_args: dict[str, Any] = {
        "head_dim": head_dim,
        "dropout": attention_dropout,
        "use_bias": use_bias,
        "impl": impl,
    }
    children = {
        "attention_norm": LayerNorm(epsilon),
        "attention": MultiHeadAttention(
            heads,
            num_kv_heads=num_kv_heads,
            causal=causal,
            rotary=rotary,
            cache_size=cache_size,
            **attention_args,
        ),
        "mlp_norm": LayerNorm(epsilon),
    }
    if cross:
        children["cross_norm"] = LayerNorm(epsilon)
        children["cross_attention"] = MultiHeadAttention(heads, cross=True, **attention_args)

    def mlp_layers(d_model: int) -> dict[str, Layer]:
        hidden = mlp_dim or 4 * d_model
        layers = {"mlp_in": Dense(hidden, use_bias=use_bias)}
        if mlp == "swiglu":
            layers["mlp_gate"] = Dense(hidden, use_bias=use_bias)
        layers["mlp_out"] = Dense(d_model, use_bias=use_bias)
        return layers

    def split(x):
        parts = list(x) if isinstance(x, (tuple, list)) else [x]
        allowed = (2, 3) if cross else (1, 2)
        if len(parts) not in allowed:
            forms = "(x, context[, lengths_or_mask])" if cross else "x or (x, lengths_or_mask)"
            raise layer_error(kind, f"expected {forms}, got a tuple of {len(parts)}")
        return parts

    def dropout_branch(y, key, i, train):
        if not train or rate == 0.0:
            return y
        if key is None:
            raise layer_error(kind, "dropout in training needs key=")
        keep = jax.random.bernoulli(jax.random.fold_in(key, i), 1.0 - rate, y.shape)
        return jax.numpy.where(keep, y / (1.0 - rate), 0.0).astype(y.dtype)

    def apply(params, state, x, *, key=None, train):
        parts = split(x)
        h = parts[0]
        d_model = h.shape[-1]
        layers = {**children, **mlp_layers(d_model)}
        new_state = {}

        def run(name_, inp):
            y, s = apply_child(name_, layers[name_], params, state, inp, key, train)
            if s:
                new_state[name_] = s
            return y

        self_in = run("attention_norm", h)
        attn_in = (self_in, parts[1]) if not cross and len(parts) == 2 else self_in
        h = h + dropout_branch(run("attention", attn_in), key, 0, train)
        if cross:
            c = run("cross_norm", h)
            h = h + dropout_branch(run("cross_attention", (c, *parts[1:])), key, 1, train)
        m = run("mlp_norm", h)
        u = _gelu(run("mlp_in", m)) if mlp == "gelu" else run("mlp_in", m)
        if mlp == "swiglu":
            u = jax.nn.silu(run("mlp_gate", m)) * u
        h = h + dropout_branch(run("mlp_out", u), key, 2, train)
        if h.shape != parts[0].shape:
            raise layer_error(kind, f"the block changed the shape {parts[0].shape} to {h.shape}")
        return ((h, *parts[1:]) if isinstance(x, (tuple, list)) else h), new_state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        parts = split(spec)
        x_spec = parts[0]
        if not isinstance(x_spec, jax.ShapeDtypeStruct) or len(x_spec.shape) != 3:
            raise layer_error(kind, f"expected x of shape (batch, time, d_model), got {x_spec!r}")
        d_model = x_spec.shape[-1]
        layers = {**children, **mlp_layers(d_model)}
        hidden = mlp_dim or 4 * d_model
        params, state = {}, {}
        specs = {
            "attention_norm": x_spec,
            "attention": x_spec if cross or len(parts) == 1 else (x_spec, parts[1]),
            "mlp_norm": x_spec,
            "mlp_in": x_spec,
            "mlp_gate": x_spec,
            "mlp_out": jax.ShapeDtypeStruct(x_spec.shape[:-1] + (hidden,), x_spec.dtype),
        }
        if cross:
            specs["cross_norm"] = x_spec
            specs["cross_attention"] = (x_spec, *parts[1:])
        for name_, layer in layers.items():
            _, p, s = init_child(name_, layer, key, specs[name_])
            if p:
                params[name_] = p
            if s:
                state[name_] = s
        return spec, params, state

    return Layer(init, apply, kind, name)
