"""In-memory data sets and the iterators that batch them.

Example:
    >>> import numpy as np, jaxnets as jn
    >>> data = jn.data.ArrayDataset(np.arange(10.0)[:, None], np.arange(10))
    >>> [len(x) for x, _ in jn.data.batches(data, 4, seed=0, epoch=0)]
    [4, 4]
    >>> [int(mask.sum()) for _, _, mask in jn.data.eval_batches(data, 4)]
    [4, 4, 2]
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import jax
import numpy as np


class ArrayDataset(NamedTuple):
    """Inputs and labels as arrays with the example on the first axis."""

    inputs: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.inputs)

    def check(self) -> ArrayDataset:
        """Raise a ValueError if inputs and labels disagree on the number of examples."""
        if len(self.inputs) != len(self.labels):
            raise ValueError(
                f"ArrayDataset: {len(self.inputs)} inputs but {len(self.labels)} labels"
            )
        return self

    def take(self, indices: Any) -> ArrayDataset:
        """The examples at ``indices`` (a slice or an index array)."""
        return ArrayDataset(self.inputs[indices], self.labels[indices])


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled example order of ``epoch``: a pure function of (seed, epoch).

    Args:
      n: the number of examples.
      seed: the run's seed.
      epoch: the epoch, counted from 0.

    Returns:
      A permutation of ``0..n-1``.
    """
    return np.random.default_rng([seed, epoch]).permutation(n)


def batches(
    data: ArrayDataset,
    batch_size: int,
    *,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
    drop_remainder: bool = True,
    start: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Training batches of one epoch: shuffled by ``(seed, epoch)``, the last partial
    batch dropped so every step has one shape (no recompilation).

    Args:
      data: the examples.
      batch_size: examples per batch, >= 1.
      seed: the seed of the shuffle.
      epoch: the epoch whose order is used (see :func:`epoch_order`).
      shuffle: False keeps the data's order.
      drop_remainder: False also yields the last, smaller batch.
      start: how many batches to skip at the start (to resume mid-epoch).

    Yields:
      ``(inputs, labels)`` per batch, as host arrays.
    """
    data.check()
    if batch_size < 1:
        raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}")
    n = len(data)
    if drop_remainder and n < batch_size:
        raise ValueError(
            f"batches: batch_size {batch_size} is larger than the data set ({n} examples) "
            f"and drop_remainder=True would give no batch"
        )
    order = epoch_order(n, seed, epoch) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_remainder else n
    for begin in range(start * batch_size, stop, batch_size):
        idx = order[begin : begin + batch_size]
        yield data.inputs[idx], data.labels[idx]


def steps_per_epoch(data: ArrayDataset, batch_size: int, drop_remainder: bool = True) -> int:
    """How many batches :func:`batches` yields in one epoch.

    Args:
      data: the examples.
      batch_size: examples per batch.
      drop_remainder: whether the last, partial batch is dropped (as in :func:`batches`).

    Returns:
      The number of batches (0 when ``drop_remainder`` and the data is smaller than a batch).
    """
    n = len(data)
    return n // batch_size if drop_remainder else -(-n // batch_size)


def eval_batches(
    data: ArrayDataset, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Batches in order, each ``(inputs, labels, mask)``; the last is padded to
    ``batch_size`` with mask 0, so every example counts exactly once and shapes stay fixed.

    Args:
      data: the examples.
      batch_size: examples per batch.

    Yields:
      ``(inputs, labels, mask)`` per batch; ``mask`` is float32, 1 for a real example and 0
      for padding (zeros).
    """
    data.check()
    n = len(data)
    for begin in range(0, n, batch_size):
        x = data.inputs[begin : begin + batch_size]
        y = data.labels[begin : begin + batch_size]
        real = len(x)
        mask = np.ones(batch_size, np.float32)
        if real < batch_size:
            pad = batch_size - real
            x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
            y = np.concatenate([y, np.zeros((pad,) + y.shape[1:], y.dtype)])
            mask[real:] = 0.0
        yield x, y, mask


def _prefetched(iterator: Iterable[Any], size: int, place: Callable[[Any], Any]) -> Iterator:
    """``place(item)`` for every item of ``iterator``, in order, placed ``size`` items
    ahead of the one yielded; the one queue behind :func:`prefetch_to_device` and
    ``jaxnets.distributed.prefetch``."""
    queue: collections.deque = collections.deque()
    for item in iterator:
        queue.append(place(item))
        if len(queue) > size:
            yield queue.popleft()
    while queue:
        yield queue.popleft()


def prefetch_to_device(iterator: Iterable[Any], size: int = 2, sharding: Any = None) -> Iterator:
    """Move the next ``size`` items to the device while the current one is used.

    Args:
      iterator: the items, each a pytree of arrays.
      size: how many items are moved ahead of the one in use.
      sharding: where to put them (``jax.device_put``'s device or sharding); default
        the default device.

    Returns:
      An iterator over the items on the device, in order.

    Example:
        >>> import numpy as np, jaxnets as jn
        >>> items = jn.data.prefetch_to_device(iter([np.ones(2), np.zeros(2)]), size=1)
        >>> [x.tolist() for x in items]
        [[1.0, 1.0], [0.0, 0.0]]
    """

    def put(item):
        return jax.device_put(item, sharding) if sharding is not None else jax.device_put(item)

    return _prefetched(iterator, size, put)
