"""Where :func:`jaxnets.fit` and :func:`jaxnets.evaluate` read batches from.

Three kinds of data come in, and each becomes a :class:`Source`:

- an :class:`~jaxnets.data.ArrayDataset` (examples in memory): batched, shuffled by
  ``(seed, epoch)`` and the last partial batch dropped, as :func:`jaxnets.data.batches`
  does;
- any re-iterable of batches: a list of ``(inputs, labels)`` pairs, an object whose
  ``__iter__`` starts afresh each time, a ``grain.MapDataset``/``IterDataset`` that was
  ``.batch(...)``-ed, a ``grain.DataLoader``. ``inputs`` and ``labels`` may be pytrees
  (``(x, lengths)``, dicts); a batch may also be a dict ``{"inputs": ..., "labels": ...}``.
  Each epoch iterates the data once more, in the order it gives; the data shuffles itself
  (grain's ``shuffle(seed=...)``, a sampler's ``seed``). Data with an ``epoch(epoch,
  start)`` method (a :class:`~jaxnets.data.Pipeline`) is asked for each epoch's batches
  from ``start`` on, so that a resumed run skips to its batch without reading the ones
  before it.
- a one-shot iterator (a generator) is refused: a second epoch could not read it again.

An epoch is ``len(data)`` batches (``steps_per_epoch`` overrides it, and is needed when the
data has no length). Shapes and dtypes are checked on the first batch; evaluation pads the
last, smaller batch to the size of the first with mask 0, so each example counts once and
one shape is compiled.

Example:
    >>> import numpy as np, jaxnets as jn
    >>> pairs = [(np.ones((4, 3), np.float32), np.zeros(4, np.int32))] * 2
    >>> source = jn.data.as_source(pairs, where="fit", name="train_data")
    >>> source.steps_per_epoch, source.batch_size
    (2, 4)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jax
import numpy as np

from jaxnets.core.arguments import count, received
from jaxnets.data.dataset import ArrayDataset, batches, eval_batches


class Source:
    """Batches for training and evaluation, whatever the data came as.

    Attributes:
      name: the argument the data came in (``train_data``), named by the errors.
      batch_size: the examples of a training batch (the first batch's, for iterables).
      steps_per_epoch: the training batches of one epoch.
      first: the first batch, ``(inputs, labels)`` on the host: its shapes and dtypes are
        what the model is built and checked for.
    """

    name: str
    batch_size: int
    steps_per_epoch: int
    first: tuple[Any, Any]

    def labels_to_check(self) -> Any:
        """The labels checked against the model and the loss before training."""
        return self.first[1]

    def inputs_to_check(self) -> Any:
        """The inputs checked for non-finite values before validation."""
        return self.first[0]

    def train_batches(self, seed: int, epoch: int, start: int) -> Iterator[tuple[Any, Any]]:
        """The training batches of ``epoch``, from batch ``start`` on."""
        raise NotImplementedError

    def eval_batches(self, batch_size: int, masked: bool = True) -> Iterator[tuple]:
        """Every example once: ``(inputs, labels, mask)`` batches of one shape, the last
        padded (mask 0); without ``masked``, ``(inputs, labels)`` and the last smaller."""
        raise NotImplementedError

    def input_spec(self) -> Any:
        """The spec of a training batch's inputs (a pytree of ``ShapeDtypeStruct``)."""
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), self.first[0])


class ArraySource(Source):
    """An :class:`ArrayDataset` batched ``batch_size`` at a time (see :func:`batches`)."""

    def __init__(self, data: ArrayDataset, batch_size: int, name: str) -> None:
        self.data, self.name, self.batch_size = data, name, batch_size
        self.steps_per_epoch = len(data) // batch_size
        take = min(batch_size, len(data))
        self.first = (data.inputs[:take], data.labels[:take])

    def labels_to_check(self) -> Any:
        return self.data.labels

    def inputs_to_check(self) -> Any:
        return self.data.inputs

    def input_spec(self) -> Any:
        x = self.data.inputs
        return jax.ShapeDtypeStruct((self.batch_size, *x.shape[1:]), x.dtype)

    def train_batches(self, seed: int, epoch: int, start: int) -> Iterator[tuple[Any, Any]]:
        return batches(self.data, self.batch_size, seed=seed, epoch=epoch, start=start)

    def eval_batches(self, batch_size: int, masked: bool = True) -> Iterator[tuple]:
        if masked:
            return eval_batches(self.data, batch_size)
        return batches(self.data, batch_size, shuffle=False, drop_remainder=False)


class IterableSource(Source):
    """A re-iterable of batches, read afresh each epoch (see the module's docstring)."""

    def __init__(self, data: Any, name: str, where: str, steps: int | None) -> None:
        self.data, self.name, self.where = data, name, where
        iterator = iter(data)
        try:
            first = next(iterator)
        except StopIteration:
            raise ValueError(f"{where}: {name} yields no batch; it needs at least one") from None
        self.first = _pair(where, name, first, 0)
        self.batch_size = _leading_size(where, name, self.first)
        if steps is None:
            steps = _length(where, name, data)
        self.steps_per_epoch = steps

    def train_batches(self, seed: int, epoch: int, start: int) -> Iterator[tuple[Any, Any]]:
        del seed  # the data orders itself
        if callable(getattr(self.data, "epoch", None)):  # a Pipeline: it skips to start
            batches = itertools.islice(self.data.epoch(epoch, start), self.steps_per_epoch - start)
        else:
            batches = itertools.islice(iter(self.data), start, self.steps_per_epoch)
        return self._checked(batches, start)

    def eval_batches(self, batch_size: int, masked: bool = True) -> Iterator[tuple]:
        del batch_size  # the data's own batches, the last padded to the first one's size
        for x, y in self._checked(iter(self.data), 0, exact=False):
            yield _padded(x, y, self.batch_size) if masked else (x, y)

    def _checked(
        self, iterator: Iterator[Any], start: int, exact: bool = True
    ) -> Iterator[tuple[Any, Any]]:
        """Each batch as a pair, checked against the first batch's structure and shapes;
        with ``exact``, the batches must last the epoch."""
        want = _layout(self.first)
        seen = start
        for batch in iterator:
            pair = _pair(self.where, self.name, batch, seen)
            got = _layout(pair)
            if got[0] != want[0] or got[2] != want[2]:
                raise ValueError(
                    f"{self.where}: batch {seen} of {self.name} has the structure or dtypes "
                    f"{_shown(got)}, the first batch {_shown(want)}; every batch must match"
                )
            if got[1] != want[1] and (exact or not _smaller_leading(got[1], want[1])):
                raise ValueError(
                    f"{self.where}: batch {seen} of {self.name} has the shapes "
                    f"{list(got[1])}, the first batch {list(want[1])}; every training batch "
                    f"must have the first one's shapes (only the last batch of an evaluation "
                    f"may be smaller)"
                )
            seen += 1
            yield pair
        if exact and seen < self.steps_per_epoch:
            raise ValueError(
                f"{self.where}: {self.name} ran out after {seen} batches, but an epoch is "
                f"{self.steps_per_epoch} (its len or steps_per_epoch); give a length that "
                f"matches the batches it yields"
            )


def as_source(
    data: Any,
    *,
    batch_size: int | None = None,
    steps_per_epoch: int | None = None,
    where: str = "as_source",
    name: str = "data",
) -> Source:
    """The :class:`Source` that reads ``data``.

    Args:
      data: an :class:`ArrayDataset` or a re-iterable of batches (see the module's
        docstring).
      batch_size: examples a batch for an ``ArrayDataset`` (None: 32); for batches, None
        or the size they have.
      steps_per_epoch: batches an epoch (None: all of an ``ArrayDataset``'s full batches,
        or ``len(data)``).
      where: the function named in the errors.
      name: the argument named in the errors.

    Returns:
      The source.

    Raises:
      TypeError: ``data`` is none of the kinds, a one-shot iterator, or a batch is not a
        pair.
      ValueError: no batch, a batch size that disagrees with the batches, batches of
        other shapes.
    """
    if steps_per_epoch is not None:
        steps_per_epoch = count(where, "steps_per_epoch", steps_per_epoch)
    if isinstance(data, ArrayDataset):
        data = _checked_arrays(where, name, data)
        size = 32 if batch_size is None else count(where, "batch_size", batch_size)
        source: Source = ArraySource(data, size, name)
        if steps_per_epoch is not None:
            source.steps_per_epoch = min(steps_per_epoch, source.steps_per_epoch)
        return source
    if isinstance(data, tuple | list) and len(data) == 2 and hasattr(data[0], "shape"):
        raise TypeError(
            f"{where}: {name} is a {type(data).__name__} of two arrays, which reads as "
            f"(inputs, labels) but is not batched; wrap it: jn.data.ArrayDataset(*{name})"
        )
    if isinstance(data, Iterator) or not isinstance(data, Iterable):
        why = (
            ", a one-shot iterator that a second epoch could not read again: pass a list of "
            "batches or a grain data set"
            if isinstance(data, Iterator)
            else ""
        )
        raise TypeError(
            f"{where}: {name} must be a jaxnets.data.ArrayDataset(inputs, labels) or a "
            f"re-iterable of (inputs, labels) batches (a list, a grain data set or loader); "
            f"got {received(data)}{why}"
        )
    source = IterableSource(data, name, where, steps_per_epoch)
    if batch_size is not None and batch_size != source.batch_size:
        raise ValueError(
            f"{where}: batch_size={batch_size}, but the batches of {name} hold "
            f"{source.batch_size} examples; leave batch_size=None with batched data"
        )
    return source


def _checked_arrays(where: str, name: str, data: ArrayDataset) -> ArrayDataset:
    """``data`` with arrays for inputs and labels, as many labels as inputs, and at least
    one example; the errors name the split (``name``)."""
    for part in ("inputs", "labels"):
        value = getattr(data, part)
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            raise TypeError(
                f"{where}: {name}.{part} must be an array (numpy or jax), got {received(value)}"
            )
        if np.ndim(value) == 0:
            raise ValueError(
                f"{where}: {name}.{part} must have the examples on its first axis, got a "
                f"scalar of shape ()"
            )
    n, m = len(data.inputs), len(data.labels)
    if n != m:
        raise ValueError(f"{where}: {name} has {n} inputs but {m} labels; give one label per input")
    if n == 0:
        raise ValueError(f"{where}: {name} is empty (0 examples); it needs at least one")
    return data


def _pair(where: str, name: str, batch: Any, index: int) -> tuple[Any, Any]:
    """A batch as ``(inputs, labels)`` host arrays."""
    if isinstance(batch, Mapping) and set(batch) == {"inputs", "labels"}:
        batch = (batch["inputs"], batch["labels"])
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise TypeError(
            f"{where}: batch {index} of {name} must be an (inputs, labels) pair or a dict "
            f"with keys 'inputs' and 'labels', got {received(batch)}"
        )
    leaves = jax.tree.leaves(batch)
    bad = [a for a in leaves if not (hasattr(a, "shape") and hasattr(a, "dtype"))]
    if bad or not leaves:
        raise TypeError(
            f"{where}: batch {index} of {name} must hold arrays (numpy or jax), got "
            f"{received(bad[0]) if bad else 'no arrays'}"
        )
    return batch[0], batch[1]


def _leading_size(where: str, name: str, pair: tuple[Any, Any]) -> int:
    sizes = {np.shape(a)[0] if np.ndim(a) else -1 for a in jax.tree.leaves(pair)}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(
            f"{where}: the first batch of {name} must have the examples on the first axis "
            f"of every array, with one count; got leading sizes {sorted(sizes)} (-1: a scalar)"
        )
    return int(sizes.pop())


def _length(where: str, name: str, data: Any) -> int:
    try:
        n = len(data)
    except TypeError:
        raise TypeError(
            f"{where}: {name} has no len(), so an epoch's length is unknown; pass steps_per_epoch="
        ) from None
    if n == 0:
        raise ValueError(f"{where}: {name} has length 0; it needs at least one batch")
    return n


def _layout(pair: Any) -> tuple[Any, tuple, tuple]:
    leaves, treedef = jax.tree.flatten(pair)
    return treedef, tuple(tuple(np.shape(a)) for a in leaves), tuple(a.dtype for a in leaves)


def _shown(layout: tuple[Any, tuple, tuple]) -> str:
    return f"{layout[0]} with dtypes {[str(d) for d in layout[2]]}"


def _smaller_leading(got: tuple, want: tuple) -> bool:
    return all(g[1:] == w[1:] and 0 < g[0] <= w[0] for g, w in zip(got, want, strict=True))


def _padded(x: Any, y: Any, size: int) -> tuple[Any, Any, np.ndarray]:
    real = np.shape(jax.tree.leaves(x)[0])[0]
    mask = np.zeros(size, np.float32)
    mask[:real] = 1.0

    def pad(a: Any) -> Any:
        a = np.asarray(a)
        if len(a) == size:
            return a
        return np.concatenate([a, np.zeros((size - len(a), *a.shape[1:]), a.dtype)])

    return jax.tree.map(pad, x), jax.tree.map(pad, y), mask
