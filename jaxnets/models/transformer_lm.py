"""A decoder-only Transformer language model (GPT-style) and sampling from it.

``transformer_lm`` embeds token ids, adds positions, runs ``layers`` causal pre-norm
blocks through ``jn.repeat`` (one traced block), normalises, and maps back to the
vocabulary with the transposed embedding (weight tying, Press & Wolf 2017) or a Dense.
Built with ``decode=True`` the same params drive incremental decoding: every attention
layer keeps a key/value cache of ``max_len`` positions in ``state``, and :func:`generate`
reads a prompt in one call, then draws one token per step inside one ``lax.scan``.

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> model = jn.models.transformer_lm(30, d_model=16, heads=2, layers=2, max_len=12)
    >>> spec, params, _ = model.init(jax.random.key(0), jax.ShapeDtypeStruct((2, 12), jnp.int32))
    >>> spec.shape, sorted(params)
    ((2, 12, 30), ['blocks', 'embed', 'norm', 'positions'])
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.activations import check_name
from jaxnets.core import Layer, apply_child, as_spec, init_child, layer_error
from jaxnets.core.arguments import choice, count, flag, number
from jaxnets.layers import Dense, Embedding, LayerNorm
from jaxnets.layers.positional import LearnedPositions, SinusoidalPositions
from jaxnets.layers.transformer import TransformerBlock
from jaxnets.scan import repeat

__all__ = ["generate", "transformer_lm"]


def transformer_lm(
    vocab_size: int,
    d_model: int = 128,
    heads: int = 4,
    layers: int = 4,
    max_len: int = 256,
    *,
    mlp_dim: int | None = None,
    mlp: str = "gelu",
    positions: str = "learned",
    num_kv_heads: int | None = None,
    dropout: float = 0.0,
    tie_embeddings: bool = True,
    decode: bool = False,
    impl: str = "auto",
    name: str | None = "transformer_lm",
) -> Layer:
    """A causal Transformer over token ids: ``(batch, T)`` ints in, logits ``(batch, T,
    vocab_size)`` out, ``T <= max_len``.

    Args:
      vocab_size: the number of token ids, in and out.
      d_model: the width of the residual stream.
      heads: the attention heads of each block.
      layers: the number of blocks (stacked with :func:`jaxnets.repeat`).
      max_len: the longest sequence (the position table and, with ``decode``, the cache).
      mlp_dim: the MLP's hidden width (default ``4 * d_model``).
      mlp: "gelu" or "swiglu".
      positions: "learned", "sinusoidal" (added to the embeddings) or "rotary" (in the
        attention).
      num_kv_heads: key/value heads (grouped-query attention; default ``heads``).
      dropout: dropout on each block's branches in training.
      tie_embeddings: the output projection is the transposed embedding table; else a
        Dense ``logits``.
      decode: keep key/value caches (and the position index) in ``state`` for
        :func:`generate`; the params are the same as without.
      impl: the attention core's implementation (``"auto"``, ``"reference"``, ...).
      name: the model's name.

    Returns:
      The model; its params are ``embed``, ``positions`` (learned only), ``blocks`` (each
      leaf stacked over the layers), ``norm`` and, untied, ``logits``.
    """
    where = "transformer_lm"
    vocab_size = count(where, "vocab_size", vocab_size)
    d_model = count(where, "d_model", d_model)
    heads = count(where, "heads", heads)
    layers = count(where, "layers", layers)
    max_len = count(where, "max_len", max_len)
    positions = choice(where, "positions", positions, ("learned", "sinusoidal", "rotary"))
    number(where, "dropout", dropout, low=0.0, high=1.0, high_open=True)
    tie_embeddings = flag(where, "tie_embeddings", tie_embeddings)
    decode = flag(where, "decode", decode)
    check_name(where, name)
    if d_model % heads:
        raise ValueError(f"{where}: d_model ({d_model}) must be a multiple of heads ({heads})")
    block = TransformerBlock(
        heads,
        mlp_dim,
        num_kv_heads=num_kv_heads,
        mlp=mlp,
        dropout=dropout,
        causal=True,
        rotary=positions == "rotary",
        cache_size=max_len if decode else None,
        impl=impl,
    )
    children: dict[str, Layer] = {"embed": Embedding(vocab_size, d_model)}
    if positions == "learned":
        children["positions"] = LearnedPositions(max_len, stateful=decode)
    elif positions == "sinusoidal":
        children["positions"] = SinusoidalPositions(max_len, stateful=decode)
    children["blocks"] = repeat(block, layers)
    children["norm"] = LayerNorm()
    if not tie_embeddings:
        children["logits"] = Dense(vocab_size)

    def check_ids(ids):
        shape = tuple(getattr(ids, "shape", ()))
        if len(shape) != 2 or not jnp.issubdtype(ids.dtype, jnp.integer):
            raise layer_error(
                where,
                f"expects int token ids (batch, time), got shape {shape} and dtype "
                f"{getattr(ids, 'dtype', None)}",
            )
        if shape[1] > max_len:
            raise layer_error(
                where, f"the input has {shape[1]} tokens, more than max_len={max_len}"
            )

    def apply(params, state, x, *, key=None, train):
        check_ids(x)
        new_state = {}
        h = x
        for child_name, layer in children.items():
            h, s = apply_child(child_name, layer, params, state, h, key, train)
            if s:
                new_state[child_name] = s
        if tie_embeddings:
            table = params["embed"]["embedding"].astype(h.dtype)
            h = jnp.einsum("btd,vd->btv", h, table)
        return h, new_state

    def init(key, input_spec):
        spec = as_spec(input_spec, jnp.int32)
        check_ids(spec)
        params, state = {}, {}
        h = spec
        for child_name, layer in children.items():
            h, p, s = init_child(child_name, layer, key, h)
            if p:
                params[child_name] = p
            if s:
                state[child_name] = s
        out = jax.ShapeDtypeStruct(spec.shape + (vocab_size,), h.dtype)
        return out, params, state

    return Layer(init, apply, where, name)


def _draw(logits, key, temperature: float, top_k: int | None):
    """One token id per row of ``logits`` ``(batch, vocab)``."""
    logits = logits.astype(jnp.float32)
    if temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
        logits = jnp.where(logits >= kth, logits, -jnp.inf)
    return jax.random.categorical(key, logits / temperature, axis=-1).astype(jnp.int32)


def generate(
    model: Layer,
    params,
    prompt_ids,
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    key: jax.Array | None = None,
) -> jax.Array:
    """Continue each row of ``prompt_ids`` by ``length`` tokens drawn from
    ``softmax(logits / temperature)`` restricted to the ``top_k`` most likely
    (``temperature=0``: always the most likely).

    The prompt is read in one call, which fills the caches; each drawn token is then fed
    back in one at a time inside one ``lax.scan``, attending to the cache.

    Args:
      model: a :func:`transformer_lm` built with ``decode=True`` (same hyper-parameters as
        the one trained).
      params: its params.
      prompt_ids: int ids ``(batch, P)``, ``P >= 1``, with ``P + length <= max_len``.
      length: the number of tokens to draw.
      temperature: divides the logits before drawing, >= 0.
      top_k: draw only among the ``top_k`` largest logits (None: all).
      key: the PRNG key of the draws (default ``jax.random.key(0)``).

    Returns:
      The drawn ids ``(batch, length)``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> model = jn.models.transformer_lm(5, d_model=8, heads=2, layers=1, max_len=8,
        ...                                  decode=True)
        >>> _, params, _ = model.init(jax.random.key(0), jax.ShapeDtypeStruct((1, 1), jnp.int32))
        >>> jn.models.generate(model, params, jnp.array([[1, 2]]), 4, top_k=2).shape
        (1, 4)
    """
    where = "generate"
    if not isinstance(model, Layer):
        raise TypeError(f"{where}: model must be a Layer (a transformer_lm), got {model!r:.60}")
    length = count(where, "length", length, minimum=0)
    temperature = number(where, "temperature", temperature, low=0.0)
    top_k = None if top_k is None else count(where, "top_k", top_k)
    prompt_ids = jnp.asarray(prompt_ids)
    if prompt_ids.ndim != 2 or prompt_ids.shape[1] < 1:
        raise ValueError(
            f"{where}: prompt_ids must be ids (batch, P) with P >= 1, got shape "
            f"{tuple(prompt_ids.shape)}"
        )
    key = jax.random.key(0) if key is None else key
    _, _, state = model.init(jax.random.key(0), jax.ShapeDtypeStruct(prompt_ids.shape, jnp.int32))
    cache = state.get("blocks", {}).get("attention", {}).get("key")
    if cache is None:
        raise ValueError(f"{where}: the model keeps no cache; build it with decode=True")
    max_len = cache.shape[2]  # (layers, batch, max_len, kv_heads, head_dim)
    if prompt_ids.shape[1] + length > max_len:
        raise ValueError(
            f"{where}: the prompt ({prompt_ids.shape[1]} tokens) and length ({length}) "
            f"exceed the model's max_len ({max_len})"
        )

    @jax.jit
    def run(params, state, prompt_ids, key):
        logits, state = model.apply(params, state, prompt_ids, train=False)

        def body(carry, k):
            state, last = carry
            token = _draw(last, k, temperature, top_k)
            logits, state = model.apply(params, state, token[:, None], train=False)
            return (state, logits[:, -1]), token

        _, tokens = jax.lax.scan(body, (state, logits[:, -1]), jax.random.split(key, length))
        return tokens.T

    return run(params, state, prompt_ids, key)
