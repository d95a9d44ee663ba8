"""``repeat``: one block applied ``n`` times with ``lax.scan`` over stacked parameters.

A deep stack of identical blocks written as ``serial(block, block, ...)`` traces and
compiles every copy; ``repeat(block, n)`` traces the block once and loops over it, so
compile time stops growing with depth. Each parameter (and state) leaf of the block gets
a leading axis of length ``n``: ``params["main"]["dense_0"]["kernel"]`` has shape
``(n, in, out)``. The block must map its input spec to the same spec.

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> block = jn.residual(jn.serial(jn.Dense(8), jn.Relu()))
    >>> net = jn.repeat(block, 24)
    >>> spec, params, _ = net.init(jax.random.key(0), (2, 8))
    >>> params["main"]["dense_0"]["kernel"].shape
    (24, 8, 8)
    >>> net.apply(params, {}, jnp.ones((2, 8)), train=False)[0].shape
    (2, 8)
"""

from __future__ import annotations

import jax
from jax import lax

from jaxnets.core import Layer, Params, SpecLike, State, as_spec, layer_error


def repeat(block: Layer, n: int, *, unroll: int | bool = 1, name: str | None = None) -> Layer:
    """Apply ``block`` ``n`` times in sequence, each time with its own parameters.

    Args:
        block: a layer whose output spec equals its input spec.
        n: how many times (at least 1).
        unroll: passed to ``lax.scan``: how many iterations to unroll per loop step
            (``True`` unrolls all: the compile time of the plain stack, for comparison).
        name: the key of the stacked params in the parent.

    Layer ``i`` is initialised with ``jax.random.split(key, n)[i]`` and, in training,
    gets ``jax.random.split(key, n)[i]`` of the apply key.
    """
    if not isinstance(block, Layer):
        raise TypeError(f"repeat: expected a Layer, got {type(block).__name__}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"repeat: n must be an integer >= 1, got {n!r}")

    def init(key, input_spec: SpecLike):
        spec = as_spec(input_spec)
        out_spec, _, _ = jax.eval_shape(lambda k: block.init(k, spec), key)
        if out_spec != spec:
            raise layer_error(
                "repeat",
                f"the block maps {spec} to {out_spec}; a repeated block must keep the "
                f"shape and dtype of its input",
            )
        params, state = jax.vmap(lambda k: block.init(k, spec)[1:])(jax.random.split(key, n))
        return spec, params, state

    def apply(params: Params, state: State, x, *, key=None, train):
        keys = None if key is None else jax.random.split(key, n)

        def body(carry, per_layer):
            p, s, k = per_layer
            y, new_s = block.apply(p, s, carry, key=k, train=train)
            return y, new_s

        return lax.scan(body, x, (params, state, keys), length=n, unroll=unroll)

    return Layer(init, apply, "repeat", name)
