"""Readers for image data sets the user already has on disk: MNIST, Fashion-MNIST, CIFAR-10.

Nothing is downloaded: point the loaders at the folder that holds the original files.

* MNIST and Fashion-MNIST come as four IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``),
  gzipped (``.gz``) or not. An IDX file is a magic number (two zero bytes, a type code and
  the number of dimensions), one big-endian uint32 per dimension, then the values in
  row-major order, big-endian.
* CIFAR-10's "binary version" (``cifar-10-binary.tar.gz``, extracted) has
  ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin``: records of one label
  byte followed by 3072 pixel bytes, the red, green and blue 32x32 planes in turn.
"""

from __future__ import annotations

import gzip
import os
from typing import Any

import numpy as np

from jaxnets.data.dataset import ArrayDataset

#: IDX type code -> numpy dtype (big-endian).
IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
_CIFAR_RECORD = 1 + 3 * 32 * 32


def _read_bytes(path: str) -> bytes:
    """The file's bytes, gunzipped if it starts with the gzip magic number."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError) as e:
            raise ValueError(f"{path}: a damaged or truncated gzip file ({e})") from None
    return raw


def read_idx(path: str) -> np.ndarray:
    """Read one IDX file (gzipped or not) into an array of its shape and native-endian dtype.

    Args:
      path: the file; gzipped content is recognised by its magic bytes, not its name.

    Returns:
      The values, shaped as the header says.

    Raises:
      ValueError: for a wrong magic number, an unknown type code, or a file shorter or
        longer than its header says.

    Example:
        >>> import os, tempfile, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
        >>> read_idx(path)
        array([7, 2, 1], dtype=uint8)
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file: it starts with bytes {raw[:4].hex(' ')}, but an IDX "
            f"file starts with 00 00 <type> <ndim> (e.g. 00 00 08 03 for MNIST images)"
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02X}; known codes: {known}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, the file "
            f"has {len(raw)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "longer than its header says"
        raise ValueError(
            f"{path}: {what}: shape {shape} of {dtype.name} needs {expected} data bytes, "
            f"the file has {got}"
        )
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find(data_dir: str, names: tuple[str, ...], what: str) -> str:
    """The first of ``names`` that exists in ``data_dir``, or a FileNotFoundError."""
    for name in names:
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"{what}: no file {' or '.join(repr(n) for n in names)} in {data_dir!r}. jaxnets "
        f"downloads nothing: put the original files in that folder."
    )


def _check_mnist_pair(images: np.ndarray, labels: np.ndarray, where: str) -> None:
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"{where}: expected images (N, H, W) and labels (N,), got images {images.shape} "
            f"and labels {labels.shape}"
        )


def load_mnist(data_dir: str, *, normalize: bool = True) -> tuple[ArrayDataset, ArrayDataset]:
    """MNIST (or Fashion-MNIST) from the four IDX files in ``data_dir``, as ``(train, test)``.

    Each file may be gzipped (``train-images-idx3-ubyte.gz``) or not. Images are
    ``(N, 28, 28, 1)``: float32 in [0, 1] if ``normalize``, else the raw uint8; labels
    int32 in 0..9. The official split: 60,000 training and 10,000 test images.

    Args:
      data_dir: the folder that holds the four files.
      normalize: scale the pixels to float32 in [0, 1]; False keeps them uint8.

    Returns:
      ``(train, test)``, two :class:`ArrayDataset`.

    Raises:
      FileNotFoundError: when a file is missing (nothing is downloaded).

    Example:
        >>> load_mnist("no/such/folder")
        Traceback (most recent call last):
        ...
        FileNotFoundError: MNIST train_images: no file 'train-images-idx3-ubyte' or ...
    """
    return _load_idx_set(data_dir, normalize, "MNIST")


def load_fashion_mnist(
    data_dir: str, *, normalize: bool = True
) -> tuple[ArrayDataset, ArrayDataset]:
    """Fashion-MNIST from ``data_dir``: the same IDX file names and format as MNIST
    (see :func:`load_mnist`); labels are the ten clothing classes.

    Args:
      data_dir: the folder that holds the four files.
      normalize: scale the pixels to float32 in [0, 1]; False keeps them uint8.

    Returns:
      ``(train, test)``, two :class:`ArrayDataset` of ``(N, 28, 28, 1)`` images.
    """
    return _load_idx_set(data_dir, normalize, "Fashion-MNIST")


def _load_idx_set(data_dir: str, normalize: bool, what: str) -> tuple[ArrayDataset, ArrayDataset]:
    arrays = {}
    for role, name in MNIST_FILES.items():
        path = _find(data_dir, (name, name + ".gz"), f"{what} {role}")
        arrays[role] = read_idx(path)
    splits = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        _check_mnist_pair(images, labels, f"{what} {split} files in {data_dir!r}")
        x = images[..., None]
        x = (x.astype(np.float32) / 255.0) if normalize else x
        splits.append(ArrayDataset(x, labels.astype(np.int32)))
    return splits[0], splits[1]


def read_cifar10_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch file as ``(images uint8 (N, 32, 32, 3), labels int32)``.

    Args:
      path: the ``.bin`` file (not gzipped).

    Returns:
      ``(images, labels)``, the images channels-last.

    Raises:
      ValueError: for a size that is not a whole number of records, or a label above 9.

    Example:
        >>> import os, tempfile, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "test_batch.bin")
        >>> np.full((2, 3073), 3, np.uint8).tofile(path)
        >>> images, labels = read_cifar10_batch(path)
        >>> images.shape, labels.tolist()
        ((2, 32, 32, 3), [3, 3])
    """
    raw = np.fromfile(path, np.uint8)
    if raw.size == 0 or raw.size % _CIFAR_RECORD:
        raise ValueError(
            f"{path}: {raw.size} bytes is not a whole number of CIFAR-10 records of "
            f"{_CIFAR_RECORD} bytes (1 label byte + 3072 pixel bytes); the file is truncated "
            f"or not a CIFAR-10 binary batch (the Python 'pickle' version is not supported)"
        )
    records = raw.reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int32)
    if labels.max() >= len(CIFAR10_CLASSES):
        raise ValueError(
            f"{path}: label byte {labels.max()} is not a CIFAR-10 class (0..9); is this "
            f"CIFAR-100 or another format?"
        )
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def load_cifar10(data_dir: str, *, normalize: bool = True) -> tuple[ArrayDataset, ArrayDataset]:
    """CIFAR-10 (binary version) from ``data_dir`` as ``(train, test)``.

    Images are ``(N, 32, 32, 3)`` channels-last: float32 in [0, 1] if ``normalize``, else
    the raw uint8; labels int32 (see ``CIFAR10_CLASSES``). 50,000 training images from
    ``data_batch_1..5.bin``, 10,000 test images from ``test_batch.bin``.

    Args:
      data_dir: the ``cifar-10-batches-bin`` folder, or the folder that contains it.
      normalize: scale the pixels to float32 in [0, 1]; False keeps them uint8.

    Returns:
      ``(train, test)``, two :class:`ArrayDataset`.

    Raises:
      FileNotFoundError: when one of the six batch files is missing.
    """
    nested = os.path.join(data_dir, CIFAR10_FOLDER)
    folder = nested if os.path.isdir(nested) else data_dir
    missing = [n for n in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE) if not os.path.isfile(
        os.path.join(folder, n))]  # fmt: skip
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10: missing {missing} in {folder!r}; expected {list(CIFAR10_TRAIN_FILES)} "
            f"and {CIFAR10_TEST_FILE!r} from the extracted binary version "
            f"(cifar-10-binary.tar.gz). jaxnets downloads nothing."
        )
    splits = []
    for names in (CIFAR10_TRAIN_FILES, (CIFAR10_TEST_FILE,)):
        parts = [read_cifar10_batch(os.path.join(folder, n)) for n in names]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        x = (images.astype(np.float32) / 255.0) if normalize else images
        splits.append(ArrayDataset(x, labels))
    return splits[0], splits[1]
