"""``remat``: rematerialise a block's activations in the backward pass (``jax.checkpoint``).

Training stores every intermediate activation for the backward pass. Wrapping a block
in ``remat`` stores only its input and recomputes the inside during differentiation:
less memory for about one more forward pass of that block. Parameters, state and
outputs are those of the wrapped block.

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> block = jn.serial(jn.Dense(4), jn.Relu(), jn.Dense(4))
    >>> _, params, state = block.init(jax.random.key(0), (2, 4))
    >>> x = jnp.ones((2, 4))
    >>> def loss(layer, p):
    ...     return layer.apply(p, state, x, train=True)[0].sum()
    >>> g1 = jax.grad(lambda p: loss(block, p))(params)
    >>> g2 = jax.grad(lambda p: loss(jn.remat(block), p))(params)
    >>> bool(jnp.allclose(g1["dense_0"]["kernel"], g2["dense_0"]["kernel"]))
    True
"""

from __future__ import annotations

from typing import Any

import jax

from jaxnets.core import Layer
from jaxnets.core.arguments import received
from jaxnets.core.children import check_layer, check_name


def check_policy(where: str, policy: Any) -> Any:
    """``policy`` when it is None or a ``jax.checkpoint_policies`` entry (a callable).

    Args:
      where: the function, first in the message.
      policy: what came.

    Returns:
      ``policy``.

    Raises:
      TypeError: ``policy`` is a name or another value, not a policy.
    """
    if policy is None or callable(policy):
        return policy
    hint = ""
    if isinstance(policy, str) and hasattr(jax.checkpoint_policies, policy):
        hint = f" (pass jax.checkpoint_policies.{policy}, not its name)"
    raise TypeError(
        f"{where}: policy must be a jax.checkpoint_policies entry or None, "
        f"got {received(policy)}{hint}"
    )


def remat(layer: Layer, *, policy=None, name: str | None = None) -> Layer:
    """``layer`` whose apply runs under ``jax.checkpoint`` (same params, state, names).

    Args:
      layer: the block to wrap.
      policy: a ``jax.checkpoint_policies`` entry choosing what may be saved (e.g.
        ``jax.checkpoint_policies.dots_saveable``); None saves nothing but the inputs.
      name: the key of the layer in its parent (default: the name of ``layer``).

    Returns:
      The layer, with the init, params, state and kind of ``layer``.

    Raises:
      TypeError: when ``layer`` is not a :class:`Layer` or ``policy`` not a policy.
    """
    check_layer("remat", "layer", layer)
    check_policy("remat", policy)
    check_name("remat", name)

    def apply(params, state, x, *, key=None, train):
        def run(p, s, inputs, k):
            return layer.apply(p, s, inputs, key=k, train=train)

        return jax.checkpoint(run, policy=policy)(params, state, x, key)

    return Layer(layer.init, apply, layer.kind, name if name is not None else layer.name)
