"""The vision Transformer (Dosovitskiy et al. 2021): images cut into patches, each patch a
token, a stack of pre-norm Transformer blocks, and a classifier on a class token or on the
mean of the tokens.

Example:
    >>> import jax, jaxnets as jn
    >>> model = jn.models.vit(8, 2, num_classes=10, d_model=16, heads=2, layers=2)
    >>> spec, params, _ = model.init(jax.random.key(0), (3, 8, 8, 1))
    >>> spec.shape, params["positions"]["embedding"].shape
    ((3, 10), (17, 16))
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.activations import check_name
from jaxnets.core import Layer, apply_child, as_spec, init_child, layer_error
from jaxnets.core.arguments import choice, count, number
from jaxnets.layers import Dense, LayerNorm
from jaxnets.layers.positional import LearnedPositions
from jaxnets.layers.transformer import TransformerBlock
from jaxnets.scan import repeat

__all__ = ["vit"]


def _patches(x, patch: int):
    """``(B, H, W, C) -> (B, (H/p)*(W/p), p*p*C)``, patches in row-major order."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // patch, patch, w // patch, patch, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def vit(
    image_size: int,
    patch_size: int,
    *,
    num_classes: int = 10,
    d_model: int = 64,
    heads: int = 4,
    layers: int = 4,
    mlp_dim: int | None = None,
    pool: str = "cls",
    dropout: float = 0.0,
    impl: str = "auto",
    name: str | None = "vit",
) -> Layer:
    """A vision Transformer classifier: images ``(batch, image_size, image_size, C)`` in,
    logits ``(batch, num_classes)`` out.

    The patch embedding is a Dense on each flattened ``patch_size x patch_size`` patch (a
    convolution with stride equal to its window); learned positions are added; the
    blocks run through :func:`jaxnets.repeat`; a final LayerNorm precedes the head.

    Args:
      image_size: the images' height and width.
      patch_size: the side of each square patch; divides ``image_size``.
      num_classes: the number of classes.
      d_model: the width of each token.
      heads: the attention heads.
      layers: the number of blocks.
      mlp_dim: the MLP's hidden width (default ``4 * d_model``).
      pool: "cls" (a learned class token, its final state classified) or "mean" (the
        mean over the patch tokens).
      dropout: dropout on the blocks' branches in training.
      impl: the attention core's implementation.
      name: the model's name.

    Returns:
      The model; its params are ``patch_embed``, ``cls_token`` (with "cls"),
      ``positions``, ``blocks``, ``norm`` and ``head``.
    """
    where = "vit"
    image_size = count(where, "image_size", image_size)
    patch_size = count(where, "patch_size", patch_size)
    count(where, "num_classes", num_classes)
    d_model = count(where, "d_model", d_model)
    heads = count(where, "heads", heads)
    layers = count(where, "layers", layers)
    pool = choice(where, "pool", pool, ("cls", "mean"))
    number(where, "dropout", dropout, low=0.0, high=1.0, high_open=True)
    check_name(where, name)
    if image_size % patch_size:
        raise ValueError(
            f"{where}: patch_size ({patch_size}) must divide image_size ({image_size})"
        )
    if d_model % heads:
        raise ValueError(f"{where}: d_model ({d_model}) must be a multiple of heads ({heads})")
    tokens = (image_size // patch_size) ** 2 + (pool == "cls")
    block = TransformerBlock(heads, mlp_dim, dropout=dropout, impl=impl)
    children = {
        "patch_embed": Dense(d_model),
        "positions": LearnedPositions(tokens),
        "blocks": repeat(block, layers),
        "norm": LayerNorm(),
        "head": Dense(num_classes),
    }

    def check(x):
        shape = tuple(getattr(x, "shape", ()))
        if len(shape) != 4 or shape[1:3] != (image_size, image_size):
            raise layer_error(
                where,
                f"expects images (batch, {image_size}, {image_size}, channels), got shape {shape}",
            )

    def apply(params, state, x, *, key=None, train):
        check(x)

        def run(child, h):
            return apply_child(child, children[child], params, state, h, key, train)[0]

        h = run("patch_embed", _patches(x, patch_size))
        if pool == "cls":
            cls = jnp.broadcast_to(params["cls_token"].astype(h.dtype), (h.shape[0], 1, d_model))
            h = jnp.concatenate([cls, h], axis=1)
        h = run("norm", run("blocks", run("positions", h)))
        h = h[:, 0] if pool == "cls" else jnp.mean(h, axis=1)
        return run("head", h), state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        check(spec)
        b, _, _, c = spec.shape
        patch_spec = jax.ShapeDtypeStruct(
            (b, tokens - (pool == "cls"), patch_size * patch_size * c), spec.dtype
        )
        token_spec = jax.ShapeDtypeStruct((b, tokens, d_model), spec.dtype)
        specs = {
            "patch_embed": patch_spec,
            "positions": token_spec,
            "blocks": token_spec,
            "norm": token_spec,
            "head": jax.ShapeDtypeStruct((b, d_model), spec.dtype),
        }
        params = {}
        for child, layer in children.items():
            out, p, _ = init_child(child, layer, key, specs[child])
            if p:
                params[child] = p
        if pool == "cls":
            params["cls_token"] = (
                jax.random.normal(jax.random.fold_in(key, 1), (1, 1, d_model), jnp.float32) * 0.02
            )
        return out, params, {}

    return Layer(init, apply, where, name)
