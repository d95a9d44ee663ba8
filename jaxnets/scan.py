"""``repeat``: one block applied ``n`` times in a loop over stacked parameters.

A deep stack of identical blocks written as ``serial(block, block, ...)`` traces and
compiles every copy; ``repeat(block, n)`` traces the block once and loops over it, so
compile time stops growing with depth. Each parameter (and state) leaf of the block gets
a leading axis of length ``n``: ``params["main"]["dense_0"]["kernel"]`` has shape
``(n, in, out)``. The block must map its input spec to the same spec.

By default the loop body is rematerialised: the forward loop keeps only each block's
input, and the backward loop recomputes the block before differentiating it. In a train
step ``impl="auto"`` then runs the loop of ``jaxnets._impl.repeat_loop`` (a
``jax.custom_vjp`` of two ``lax.while_loop``s that compiles fewer kernels); where forward
mode or derivatives of derivatives may apply it runs the reference, ``lax.scan`` of
``jax.checkpoint`` (``docs/implementations.md``).

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
import numpy as np
from jax import lax

from jaxnets import _impl
from jaxnets.core import Layer, Params, SpecLike, State, as_spec, layer_error, records_stacked
from jaxnets.core.arguments import count, flag
from jaxnets.core.children import check_layer, check_name
from jaxnets.remat import check_policy


def _scanned(block: Layer, n: int, train: bool, params, state, x, keys, remat, policy, unroll):
    """``(y, new_state)``: ``block`` applied ``n`` times by ``lax.scan`` over its stacked
    ``params`` and ``state`` (of ``jax.checkpoint`` with ``remat``: with no ``policy``
    nothing is saved but each block's input)."""

    def step(p, s, carry, k):
        return block.apply(p, s, carry, key=k, train=train)

    if remat:
        # lax.scan already keeps the recomputation apart from the forward loop, so
        # the CSE barriers of prevent_cse are not needed (JAX's advice for scan).
        step = jax.checkpoint(step, policy=policy, prevent_cse=False)

    def body(carry, per_layer):
        p, s, k = per_layer
        return step(p, s, carry, k)

    return lax.scan(body, x, (params, state, keys), length=n, unroll=unroll)


_impl.define_op("repeat", _scanned, layer="repeat")


def repeat(
    block: Layer,
    n: int,
    *,
    remat: bool = True,
    policy=None,
    unroll: int | bool = 1,
    impl: str = "auto",
    name: str | None = None,
) -> Layer:
    """Apply ``block`` ``n`` times in sequence, each time with its own parameters.

    Args:
      block: a layer whose output spec equals its input spec.
      n: how many times (at least 1).
      remat: rematerialise the loop body in the backward pass: the forward loop
        stores one input per block instead of every intermediate. Fewer compiled
        kernels and less memory for about one more forward pass of each block;
        ``False`` stores the intermediates (``lax.scan``, any order of autodiff).
      policy: with ``remat``, a ``jax.checkpoint_policies`` entry choosing what may be
        saved (e.g. ``jax.checkpoint_policies.dots_saveable``); None saves only each
        block's input.
      unroll: passed to ``lax.scan``: how many iterations to unroll per loop step
        (``True`` unrolls all: the compile time of the plain stack, for comparison).
      impl: "auto", "reference" (``lax.scan``, of ``jax.checkpoint`` with ``remat``) or
        "while_loop" (reverse mode and vmap only; needs ``remat``, no ``policy`` and
        ``unroll=1``).
      name: the key of the stacked params in the parent.

    Returns:
      The layer; its params and state are the block's, stacked.

    Raises:
      TypeError: ``block`` is not a Layer, ``n`` or ``unroll`` not an int, ``remat`` not a
        bool, ``policy`` not a checkpoint policy.
      ValueError: ``n`` or ``unroll`` below 1, a ``policy`` without ``remat``, an unknown
        ``impl``.

    Layer ``i`` is initialised with ``jax.random.split(key, n)[i]`` and gets
    ``jax.random.split(key, n)[i]`` of the apply key when one is given.
    """
    check_layer("repeat", "block", block)
    n = count("repeat", "n", n)
    remat = flag("repeat", "remat", remat)
    check_policy("repeat", policy)
    if not isinstance(unroll, (bool, np.bool_)):
        try:
            unroll = count("repeat", "unroll", unroll)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{e} (or True to unroll every iteration)") from None
    check_name("repeat", name)
    if policy is not None and not remat:
        raise ValueError("repeat: a checkpoint policy needs remat=True")
    _impl.check_impl("repeat", impl)

    def init(key, input_spec: SpecLike):
        spec = as_spec(input_spec)
        with records_stacked(None):  # listed once, by the init below
            out_spec, _, _ = jax.eval_shape(lambda k: block.init(k, spec), key)
        if out_spec != spec:
            raise layer_error(
                "repeat",
                f"the block maps {spec} to {out_spec}; a repeated block must keep the "
                f"shape and dtype of its input",
            )
        with records_stacked(n):
            params, state = jax.vmap(lambda k: block.init(k, spec)[1:])(jax.random.split(key, n))
        return spec, params, state

    def apply(params: Params, state: State, x, *, key=None, train):
        keys = None if key is None else jax.random.split(key, n)
        args = (block, n, train, params, state, x, keys, remat, policy, unroll)
        return (_impl.choose("repeat", impl, *args).fn or _scanned)(*args)

    return Layer(init, apply, "repeat", name)
