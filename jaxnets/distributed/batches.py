"""Placing batches on a mesh: split along the data axis, checked, padded, prefetched.

Example:
    >>> import jax, numpy as np, jaxnets as jn
    >>> mesh = jn.distributed.make_mesh(jax.devices()[:1])
    >>> x, y = jn.distributed.shard_batch((np.ones((4, 2)), np.zeros(4)), mesh)
    >>> x.sharding.spec
    P('data',)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding

from jaxnets.data.dataset import _prefetched
from jaxnets.distributed.mesh import DataParallel, as_plan


def valid_batch_sizes(devices: int, near: int, count: int = 2) -> list[int]:
    """Batch sizes that split evenly over ``devices``.

    Args:
      devices: the number of devices.
      near: the batch size asked for.
      count: how many sizes to give on each side of ``near`` (at most).

    Returns:
      The multiples of ``devices`` closest to ``near``, in increasing order.

    Example:
        >>> import jaxnets as jn
        >>> jn.distributed.valid_batch_sizes(8, 30)
        [16, 24, 32, 40]
    """
    below = [m for m in range((near // devices) * devices, 0, -devices)][:count]
    above = [((near // devices) + 1 + i) * devices for i in range(count)]
    return sorted(below + above)


def check_batch_size(
    batch_size: int, mesh: Mesh | DataParallel, *, per_process: bool = True
) -> None:
    """Raise a ValueError naming batch sizes that work if ``batch_size`` does not split
    evenly over the devices of the data axis.

    Args:
      batch_size: the number of examples of a batch.
      mesh: a ``Mesh`` or a ``DataParallel`` plan.
      per_process: the batch is this process's (training), so it must divide this
        process's devices; ``False``: it is global (evaluation) and must divide all.

    Returns:
      None.

    Example:
        >>> import jax, jaxnets as jn
        >>> jn.distributed.check_batch_size(32, jn.distributed.make_mesh())
    """
    plan = as_plan(mesh)
    n = plan.local_size if per_process else plan.size
    if batch_size % n:
        sizes = ", ".join(str(s) for s in valid_batch_sizes(n, batch_size))
        where = " per process" if per_process and jax.process_count() > 1 else ""
        raise ValueError(
            f"data parallel: a batch of {batch_size} examples{where} does not split evenly "
            f"over the {n} devices of the '{plan.axis}' mesh axis; use a multiple of {n}, "
            f"such as {sizes}"
        )


def _to_global(x: Any, sharding: NamedSharding, local: bool) -> jax.Array:
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    host = np.asarray(x)
    if local:
        return jax.make_array_from_process_local_data(sharding, host)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_batch(batch: Any, mesh: Mesh | DataParallel, *, per_process: bool = True) -> Any:
    """Place every array of ``batch`` on the mesh, split along its first axis.

    With one process ``per_process`` makes no difference.

    Args:
      batch: a pytree of arrays with the same leading (example) axis.
      mesh: a ``Mesh`` or a ``DataParallel`` plan.
      per_process: each process passes its own examples and the global batch is their
        concatenation in process order (training); ``False``: every process passes
        the same global batch (evaluation).

    Returns:
      ``batch`` with every array a global ``jax.Array`` split along the data axis.
      Raises a ValueError if the batch does not split evenly over the devices.

    Example:
        >>> import numpy as np, jaxnets as jn
        >>> mesh = jn.distributed.make_mesh()
        >>> x, y = jn.distributed.shard_batch((np.ones((8, 2)), np.zeros(8)), mesh)
        >>> x.shape, y.sharding.spec
        ((8, 2), P('data',))
    """
    plan = as_plan(mesh)
    sharding = plan.batch_sharding()
    leaves = jax.tree.leaves(batch)
    if not leaves:
        raise ValueError("shard_batch: the batch has no arrays")
    rows = np.shape(leaves[0])[0] if np.ndim(leaves[0]) else None
    if rows is None or any(np.ndim(v) == 0 or np.shape(v)[0] != rows for v in leaves):
        raise ValueError(
            f"shard_batch: every array of a batch needs the same leading (example) axis, "
            f"got shapes {[np.shape(v) for v in leaves]}"
        )
    already = all(isinstance(v, jax.Array) and v.sharding == sharding for v in leaves)
    if not already:
        check_batch_size(rows, plan, per_process=per_process)
    return jax.tree.map(lambda v: _to_global(v, sharding, per_process), batch)


def pad_batch(batch: tuple, multiple: int) -> tuple:
    """Pad an evaluation batch with zero-mask examples; padded examples count zero times.

    Args:
      batch: ``(inputs, labels, mask)`` with the example on the first axis.
      multiple: the padded batch size is the next multiple of this.

    Returns:
      The padded batch as NumPy arrays, or ``batch`` itself if no padding is needed.

    Example:
        >>> import numpy as np, jaxnets as jn
        >>> x, y, mask = jn.distributed.pad_batch((np.ones((5, 2)), np.ones(5), np.ones(5)), 4)
        >>> x.shape, mask.tolist()
        ((8, 2), [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    """
    rows = np.shape(batch[0])[0]
    pad = -rows % multiple
    if pad == 0:
        return batch
    return tuple(
        np.concatenate([np.asarray(v), np.zeros((pad, *np.shape(v)[1:]), np.asarray(v).dtype)])
        for v in batch
    )


def eval_batch_size(batch_size: int, mesh: Mesh | DataParallel) -> int:
    """The evaluation batch size for ``mesh``: no padding is needed in the step but for the
    last batch, which ``eval_batches`` pads with mask 0.

    Args:
      batch_size: the batch size asked for.
      mesh: a ``Mesh`` or a ``DataParallel`` plan.

    Returns:
      ``batch_size`` rounded up to a multiple of the data axis size.

    Example:
        >>> import jax, jaxnets as jn
        >>> jn.distributed.eval_batch_size(30, jn.distributed.make_mesh(jax.devices()[:1]))
        30
    """
    n = as_plan(mesh).size
    return -(-batch_size // n) * n


def prefetch(
    iterator: Iterable[Any], mesh: Mesh | DataParallel, size: int = 2, *, per_process: bool = True
) -> Iterator[Any]:
    """Place the next ``size`` batches on the mesh (split along the data axis) while the
    current one is used, so the devices do not wait on Python.

    The queue is that of :func:`jaxnets.data.prefetch_to_device`; each batch is placed with
    :func:`shard_batch`.

    Args:
      iterator: the batches, each a pytree of arrays.
      mesh: a ``Mesh`` or a ``DataParallel`` plan.
      size: how many batches are placed ahead of the one in use.
      per_process: as for :func:`shard_batch`.

    Returns:
      An iterator over the placed batches, in order.

    Example:
        >>> import numpy as np, jaxnets as jn
        >>> mesh = jn.distributed.make_mesh()
        >>> data = jn.data.xor(8)
        >>> batches = jn.distributed.prefetch(jn.data.batches(data, 8), mesh)
        >>> [x.sharding.spec for x, _ in batches][:2]
        [P('data',), P('data',)]
    """
    plan = as_plan(mesh)  # checked at the first batch, as a generator does
    yield from _prefetched(
        iterator, size, lambda batch: shard_batch(batch, plan, per_process=per_process)
    )
