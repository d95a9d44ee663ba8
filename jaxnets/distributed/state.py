"""Placing the training state (parameters, model and optimizer state, keys) on a mesh.

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> mesh = jn.distributed.make_mesh(jax.devices()[:1])
    >>> jn.distributed.state_shardings({"w": jnp.ones((4, 2))}, mesh)["w"].spec
    P()
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding

from jaxnets.distributed.mesh import DataParallel, as_plan


def place_array(x: Any, sharding: NamedSharding) -> Any:
    """Put one array on ``sharding``; with several processes every process passes the
    same value.

    Args:
      x: a ``jax.Array``, a PRNG key or host data.
      sharding: where it goes.

    Returns:
      ``x`` as a ``jax.Array`` on ``sharding`` (``x`` itself if it is already there).

    Example:
        >>> import jax, numpy as np, jaxnets as jn
        >>> plan = jn.distributed.as_plan(jn.distributed.make_mesh(jax.devices()[:1]))
        >>> jn.distributed.place_array(np.ones(3), plan.replicated()).sharding.spec
        P()
    """
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = place_array(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def state_shardings(tree: Any, mesh: Mesh | DataParallel) -> Any:
    """The sharding of every array of ``tree`` under the plan of ``mesh``.

    Args:
      tree: a pytree of arrays (a train state, params, ...).
      mesh: a ``Mesh`` or a ``DataParallel`` plan.

    Returns:
      A pytree of ``NamedSharding`` with the structure of ``tree``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> plan = jn.distributed.fully_sharded(jn.distributed.make_mesh(), min_size=4)
        >>> jn.distributed.state_shardings({"w": jnp.ones((8, 2))}, plan)["w"].spec
        P('data', None)
    """
    plan = as_plan(mesh)
    return jax.tree.map(lambda x: plan.sharding_for(np.shape(x)), tree)


def place_state(tree: Any, mesh: Mesh | DataParallel) -> Any:
    """Put ``tree`` on the mesh: replicated, or split as :func:`fully_sharded` says.

    With several processes every process must pass the same values (same seed).

    Args:
      tree: a pytree of arrays (a train state, params, keys, ...).
      mesh: a ``Mesh`` or a ``DataParallel`` plan.

    Returns:
      ``tree`` with every array on its sharding from :func:`state_shardings`.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> plan = jn.distributed.fully_sharded(jn.distributed.make_mesh(), min_size=4)
        >>> w = jn.distributed.place_state({"w": jnp.ones((8, 2))}, plan)["w"]
        >>> w.sharding.spec
        P('data', None)
    """
    plan = as_plan(mesh)
    return jax.tree.map(lambda x: place_array(x, plan.sharding_for(np.shape(x))), tree)


def bytes_per_device(tree: Any) -> dict[jax.Device, int]:
    """How many bytes of ``tree``'s arrays each addressable device holds.

    Args:
      tree: a pytree of ``jax.Array``.

    Returns:
      A dict from device to bytes held.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> held = jn.distributed.bytes_per_device({"w": jax.device_put(jnp.ones(4))})
        >>> sorted(held.values())
        [16]
    """
    held: dict[jax.Device, int] = {}
    for leaf in jax.tree.leaves(tree):
        for shard in leaf.addressable_shards:
            held[shard.device] = held.get(shard.device, 0) + shard.data.nbytes
    return held
