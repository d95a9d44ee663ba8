"""Packed record files: a data set of fixed-shape examples in one ArrayRecord file.

Each record is one example: its int32 label and its pixels (or any fixed-shape array) as
raw bytes; a JSON file beside it (``<path>.json``) holds the shape, dtype, count and class
names. Reading an example is one random access with no decoding, so a pipeline over a
packed file runs at the speed of the disk, and a file larger than memory is read a batch
at a time. ``jaxnets pack`` writes one from an image folder or arrays.

Example:
    >>> import os, tempfile, numpy as np, jaxnets as jn
    >>> path = os.path.join(tempfile.mkdtemp(), "digits.array_record")
    >>> images = np.arange(8, dtype=np.uint8).reshape(2, 2, 2, 1)
    >>> jn.data.write_records(path, zip(images, [3, 4]))
    2
    >>> records = jn.data.RecordFile(path)
    >>> len(records), records.shape, records[1][0].ravel().tolist(), int(records[1][1])
    (2, (2, 2, 1), [4, 5, 6, 7], 4)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

FORMAT = "jaxnets-records-1"


def write_records(
    path: str | os.PathLike,
    examples: Iterable[tuple[Any, Any]],
    *,
    classes: Sequence[str] | None = None,
) -> int:
    """Write ``(array, label)`` examples into a new ArrayRecord file at ``path``.

    The file is written under a temporary name and renamed when complete, so a failed
    or interrupted write leaves no partial file behind.

    Args:
      path: the file to create (its JSON description goes to ``<path>.json``).
      examples: pairs of an array (every one of the first one's shape and dtype) and an
        integer label.
      classes: the class names by label, kept in the description.

    Returns:
      The number of examples written.

    Raises:
      FileExistsError: ``path`` exists.
      ValueError: no example, or one of another shape or dtype (its index named).
    """
    from array_record.python.array_record_module import ArrayRecordWriter

    path = os.fspath(path)
    if os.path.exists(path):
        raise FileExistsError(f"write_records: {path} exists; give a new file name")
    partial = f"{path}.partial"
    writer = ArrayRecordWriter(partial, "group_size:1")
    shape: tuple[int, ...] | None = None
    dtype: np.dtype | None = None
    n = 0
    try:
        for array, label in examples:
            x = np.ascontiguousarray(array)
            if shape is None:
                shape, dtype = x.shape, x.dtype
            elif x.shape != shape or x.dtype != dtype:
                raise ValueError(
                    f"write_records: example {n} has shape {x.shape} and dtype {x.dtype}, the "
                    f"first {shape} and {dtype}; every example must match"
                )
            writer.write(np.int32(label).tobytes() + x.tobytes())
            n += 1
    except BaseException:
        writer.close()
        os.remove(partial)
        raise
    writer.close()
    if shape is None or dtype is None:
        os.remove(partial)
        raise ValueError("write_records: no examples to write")
    description = {
        "format": FORMAT,
        "count": n,
        "shape": list(shape),
        "dtype": dtype.str,
        "classes": None if classes is None else list(classes),
    }
    with open(f"{path}.json.partial", "w") as f:
        json.dump(description, f)
    os.replace(f"{path}.json.partial", f"{path}.json")
    os.replace(partial, path)
    return n


class RecordFile:
    """A packed record file as a random-access source of ``(array, label)`` pairs.

    The reader opens on first use in each process (so the source pickles into grain's
    worker processes by its path).

    Args:
      path: a file written by :func:`write_records` (or ``jaxnets pack``).

    Raises:
      FileNotFoundError: the file or its description is missing.
      ValueError: the description is not one of jaxnets' records, or disagrees with the
        file's record count (a truncated or foreign file).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        for name in (self.path, f"{self.path}.json"):
            if not os.path.isfile(name):
                raise FileNotFoundError(
                    f"RecordFile: {name} does not exist (write the records with "
                    f"jn.data.write_records or `jaxnets pack`)"
                )
        try:
            with open(f"{self.path}.json") as f:
                description = json.load(f)
            if description.get("format") != FORMAT:
                raise ValueError(f"format {description.get('format')!r}")
            self.shape = tuple(int(s) for s in description["shape"])
            self.dtype = np.dtype(description["dtype"])
            self.count = int(description["count"])
            self.classes = description.get("classes")
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(
                f"RecordFile: {self.path}.json is not the description of jaxnets records ({e})"
            ) from None
        self._reader: Any = None
        have = self._open().num_records()
        if have != self.count:
            raise ValueError(
                f"RecordFile: {self.path} holds {have} records but its description says "
                f"{self.count}; the file is truncated or not the one described"
            )

    def _open(self) -> Any:
        if self._reader is None:
            from array_record.python.array_record_module import ArrayRecordReader

            try:
                # random access: no read-ahead (it would hold the file's chunks in memory)
                self._reader = ArrayRecordReader(
                    self.path, options="readahead_buffer_size:0", file_reader_buffer_size=32768
                )
            except Exception as e:  # the reader's own error names no file
                raise ValueError(
                    f"RecordFile: cannot read {self.path} as an ArrayRecord file: {e}"
                ) from None
        return self._reader

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_reader": None}

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.int32]:
        (record,) = self._open().read([int(index)])
        label = np.frombuffer(record, np.int32, count=1)[0]
        array = np.frombuffer(record, self.dtype, offset=4).reshape(self.shape)
        return array, label
