"""A grain input pipeline over a random-access source: shuffled per epoch, sharded per
process, batched, decoded in worker processes.

The order of an epoch is :func:`jaxnets.data.epoch_order` of ``(seed, epoch)`` over the
whole source, cut into global batches; with several JAX processes each one reads only
its slice of every global batch (so the batches assembled over the devices are those of
one process reading everything, and each host reads only its share). Starting an epoch
at batch ``k`` skips to it without reading the batches before it, which is how
:func:`jaxnets.fit` resumes a run to the example.

Example:
    >>> import numpy as np, jaxnets as jn
    >>> source = [(np.full((2, 2, 1), i, np.uint8), np.int32(i % 2)) for i in range(10)]
    >>> data = jn.data.Pipeline(source, batch_size=4, seed=0)
    >>> len(data), [y.tolist() for _, y in data.epoch(0)]
    (2, [[0, 0, 0, 1], [1, 1, 1, 0]])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from jaxnets.core.arguments import count, flag, received
from jaxnets.data.dataset import epoch_order


def scale_images(batch: tuple[Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images to float32 in ``[0, 1]``, labels to int32 (the default ``prepare``).

    Args:
      batch: ``(images, labels)``.

    Returns:
      ``(images / 255, labels)``.
    """
    x, y = batch
    x = np.asarray(x)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return x, np.asarray(y, np.int32)


class _Plan:
    """What a worker needs to read batch ``g`` of the endless sequence of epochs: the
    source and the order (picklable; each process keeps the last epoch's order)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.source, self.prepare = pipeline.source, pipeline.prepare
        self.seed, self.shuffle, self.steps = pipeline.seed, pipeline.shuffle, pipeline.steps
        self.batch_size = pipeline.batch_size
        self.process_index, self.process_count = pipeline.process_index, pipeline.process_count
        self._rows: tuple[int, np.ndarray] | None = None

    def indices(self, epoch: int) -> np.ndarray:
        n = len(self.source)
        order = epoch_order(n, self.seed, epoch) if self.shuffle else np.arange(n)
        padded = np.full(self.steps * self.batch_size, -1, np.int64)
        used = min(n, len(padded))
        padded[:used] = order[:used]
        rows = padded.reshape(self.steps, self.process_count, -1)
        return rows[:, self.process_index, :]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_rows": None}

    def __call__(self, g: int) -> Any:
        epoch, row = divmod(int(g), self.steps)
        if self._rows is None or self._rows[0] != epoch:
            self._rows = (epoch, self.indices(epoch))
        indices = self._rows[1][row]
        pairs = [self.source[int(i)] for i in indices[indices >= 0]]
        examples = np.stack([np.asarray(p[0]) for p in pairs])
        labels = np.stack([np.asarray(p[1]) for p in pairs])
        return self.prepare((examples, labels))


class Pipeline:
    """Batches of a random-access source, epoch by epoch (see the module's docstring).

    ``len()`` is the batches of an epoch; iterating gives epoch 0; ``epoch(e, start)``
    gives epoch ``e`` from batch ``start``, which :func:`jaxnets.fit` calls. Epochs asked
    for in order are read by one stream, so the worker processes (and the threads that
    read ahead) carry on from one epoch into the next.

    Args:
      source: anything with ``len()`` and ``[i] -> (example, label)`` (an
        :class:`~jaxnets.data.ImageFolder`, a :class:`~jaxnets.data.RecordFile`, a list).
      batch_size: the global batch: examples a step over all processes.
      seed: the seed of the shuffle.
      shuffle: False reads in the source's order (evaluation).
      drop_remainder: drop the last, partial batch (training); False keeps it
        (evaluation, where it is padded and masked).
      workers: decoding processes (0: read in this process, with threads ahead).
      prepare: applied to every batch ``(examples, labels)`` (default: uint8 images to
        float32 in ``[0, 1]``).
      process_index, process_count: this process's share (default: JAX's).
    """

    def __init__(
        self,
        source: Any,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_remainder: bool = True,
        workers: int = 0,
        prepare: Callable[[tuple[Any, Any]], Any] = scale_images,
        process_index: int | None = None,
        process_count: int | None = None,
    ) -> None:
        where = "pipeline"
        if not (hasattr(source, "__len__") and hasattr(source, "__getitem__")):
            raise TypeError(
                f"{where}: source must have len() and [i] (an ImageFolder, a RecordFile, a "
                f"list of (example, label)), got {received(source)}"
            )
        self.source = source
        self.batch_size = count(where, "batch_size", batch_size)
        self.seed = count(where, "seed", seed, minimum=0)
        self.shuffle = flag(where, "shuffle", shuffle)
        self.drop_remainder = flag(where, "drop_remainder", drop_remainder)
        self.workers = count(where, "workers", workers, minimum=0)
        self.prepare = prepare
        if process_count is None:
            process_count = jax.process_count()
        self.process_count = count(where, "process_count", process_count)
        self.process_index = jax.process_index() if process_index is None else process_index
        if not 0 <= self.process_index < self.process_count:
            raise ValueError(
                f"{where}: process_index must be in [0, {self.process_count}), got "
                f"{received(process_index)}"
            )
        if self.batch_size % self.process_count:
            raise ValueError(
                f"{where}: batch_size {batch_size} must split evenly over the "
                f"{self.process_count} processes"
            )
        n = len(source)
        self.steps = n // batch_size if drop_remainder else -(-n // batch_size)
        if self.steps == 0:
            raise ValueError(
                f"{where}: batch_size {batch_size} exceeds the source's {n} examples and "
                f"drop_remainder=True would give no batch"
            )
        self._plan = _Plan(self)
        self._stream: Iterator[Any] | None = None
        self._position = -1

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Any]:
        return self.epoch(0)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_stream": None, "_position": -1}

    def indices(self, epoch: int) -> np.ndarray:
        """This process's example indices of ``epoch``, batch after batch.

        Args:
          epoch: the epoch, from 0.

        Returns:
          ``(steps, local_batch)`` indices; with ``drop_remainder=False`` the last row's
          missing entries are -1.
        """
        return self._plan.indices(count("pipeline.indices", "epoch", epoch, minimum=0))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Any]:
        """The batches of ``epoch`` from batch ``start``.

        Args:
          epoch: the epoch (the shuffle's order), from 0.
          start: the first batch to read; the ones before it are not read.

        Returns:
          An iterator of prepared batches.
        """
        count("pipeline.epoch", "epoch", epoch, minimum=0)
        count("pipeline.epoch", "start", start, minimum=0)
        return self._batches(epoch * self.steps + start, self.steps - start)

    def _batches(self, first: int, n: int) -> Iterator[Any]:
        if self._stream is None or self._position != first:
            self._stream, self._position = self._open(first), first
        for _ in range(n):
            batch = next(self._stream)
            self._position += 1
            yield batch

    def _open(self, first: int) -> Iterator[Any]:
        """An endless stream of batches from global batch ``first`` on."""
        import grain

        ds = grain.MapDataset.range(first, first + self.steps * 1_000_000).map(self._plan)
        if self.workers:
            _absl_flags_readable()
            options = grain.MultiprocessingOptions(num_workers=self.workers)
            return iter(ds.to_iter_dataset().mp_prefetch(options))
        return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)))


def _absl_flags_readable() -> None:
    """Let grain's worker processes read their absl flags in a script that never parsed
    any (grain reads one before checking, google/grain#1355); parsed flags are kept."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
