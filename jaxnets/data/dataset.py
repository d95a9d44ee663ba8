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

from jaxnets.core.arguments import count, flag, received


class ArrayDataset(NamedTuple):
    """Inputs and labels as arrays with the example on the first axis."""

    inputs: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.inputs)

    def check(self) -> ArrayDataset:
        """Raise a TypeError if inputs or labels are not arrays, a ValueError if they
        disagree on the number of examples.

        Returns:
          The data set itself.
        """
        for name in ("inputs", "labels"):
            value = getattr(self, name)
            if not hasattr(value, "shape") or np.ndim(value) == 0:
                raise TypeError(
                    f"ArrayDataset: {name} must be an array with the examples on its first "
                    f"axis (np.asarray it), got {received(value)}"
                )
        if len(self.inputs) != len(self.labels):
            raise ValueError(
                f"ArrayDataset: {len(self.inputs)} inputs but {len(self.labels)} labels; "
                f"give one label per input"
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
    count("epoch_order", "n", n, minimum=0)
    count("epoch_order", "seed", seed, minimum=0)
    count("epoch_order", "epoch", epoch, minimum=0)
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

    Returns:
      An iterator of ``(inputs, labels)`` per batch, as host arrays; the arguments are
      checked when it is made.
    """
    _dataset("batches", data)
    count("batches", "batch_size", batch_size)
    count("batches", "seed", seed, minimum=0)
    count("batches", "epoch", epoch, minimum=0)
    count("batches", "start", start, minimum=0)
    flag("batches", "shuffle", shuffle)
    flag("batches", "drop_remainder", drop_remainder)
    n = len(data)
    if drop_remainder and n < batch_size:
        raise ValueError(
            f"batches: batch_size {batch_size} is larger than the data set ({n} examples) "
            f"and drop_remainder=True would give no batch"
        )
    order = epoch_order(n, seed, epoch) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_remainder else n
    return _take_batches(data, order, range(start * batch_size, stop, batch_size), batch_size)


def _take_batches(
    data: ArrayDataset, order: np.ndarray, begins: range, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for begin in begins:
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
    _dataset("steps_per_epoch", data)
    count("steps_per_epoch", "batch_size", batch_size)
    flag("steps_per_epoch", "drop_remainder", drop_remainder)
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

    Returns:
      An iterator of ``(inputs, labels, mask)`` per batch; ``mask`` is float32, 1 for a
      real example and 0 for padding (zeros).
    """
    _dataset("eval_batches", data)
    count("eval_batches", "batch_size", batch_size)
    return _padded_batches(data, batch_size)


def _padded_batches(
    data: ArrayDataset, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
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


def _dataset(where: str, data: Any) -> ArrayDataset:
    """``data`` checked as an :class:`ArrayDataset` (a TypeError names ``where``)."""
    if not isinstance(data, ArrayDataset):
        raise TypeError(
            f"{where}: data must be a jaxnets.data.ArrayDataset(inputs, labels), "
            f"got {received(data)}"
        )
    return data.check()


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

    count("prefetch_to_device", "size", size, minimum=0)

    def put(item):
        return jax.device_put(item, sharding) if sharding is not None else jax.device_put(item)

    return _prefetched(iterator, size, put)
