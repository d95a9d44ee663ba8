"""Readers: small files written in the real IDX and CIFAR-10 binary formats, read back."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from jaxnets.data import load_cifar10, load_fashion_mnist, load_mnist, read_cifar10_batch, read_idx

_IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
              np.float64: 0x0E}  # fmt: skip


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding, written independently of the reader: magic, big-endian dims, data."""
    header = struct.pack(">BBBB", 0, 0, _IDX_CODES[array.dtype.type], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data: bytes, gz: bool = False):
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, gz, dtype):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    path = write(tmp_path / "x-idx3", idx_bytes(array), gz)
    got = read_idx(str(path))
    assert got.shape == (3, 4, 5) and got.dtype == np.dtype(dtype)
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, array)


def test_idx_reads_dimensions_big_endian(tmp_path):
    # 258 labels: the dimension bytes 00 00 01 02 must be read as 258, not 33619968.
    labels = np.arange(258, dtype=np.int32).astype(np.uint8)
    raw = bytes([0, 0, 8, 1, 0, 0, 1, 2]) + labels.tobytes()
    np.testing.assert_array_equal(read_idx(str(write(tmp_path / "l", raw))), labels)


def test_idx_wrong_magic(tmp_path):
    path = write(tmp_path / "bad", b"\x89PNG" + bytes(20))
    with pytest.raises(ValueError, match=r"not an IDX file: it starts with bytes 89 50 4e 47"):
        read_idx(str(path))


def test_idx_unknown_type_code(tmp_path):
    path = write(tmp_path / "bad", bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        read_idx(str(path))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_data(tmp_path, gz):
    raw = idx_bytes(np.zeros((10, 28, 28), np.uint8))[:-100]
    path = write(tmp_path / "images", raw, gz)
    with pytest.raises(ValueError, match=r"truncated: shape \(10, 28, 28\) .* 7840 .* 7740"):
        read_idx(str(path))


def test_idx_truncated_header(tmp_path):
    path = write(tmp_path / "images", bytes([0, 0, 8, 3, 0, 0, 0, 10]))
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(str(path))


def test_idx_extra_bytes(tmp_path):
    path = write(tmp_path / "labels", idx_bytes(np.zeros(4, np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match="longer than its header says"):
        read_idx(str(path))


def test_truncated_gzip_is_reported(tmp_path):
    data = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path = write(tmp_path / "labels.gz", data[: len(data) // 2])
    with pytest.raises(ValueError, match="damaged or truncated gzip"):
        read_idx(str(path))


def _write_mnist(folder, n_train=5, n_test=3, gz=False, size=28):
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size), np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size), np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for name, array in arrays.items():
        write(folder / (name + (".gz" if gz else "")), idx_bytes(array), gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist])
def test_load_mnist(tmp_path, gz, loader):
    arrays = _write_mnist(tmp_path, gz=gz)
    train, test = loader(str(tmp_path))
    assert train.inputs.shape == (5, 28, 28, 1) and train.inputs.dtype == np.float32
    assert test.inputs.shape == (3, 28, 28, 1)
    np.testing.assert_allclose(train.inputs[..., 0], arrays["train-images-idx3-ubyte"] / 255.0)
    np.testing.assert_array_equal(test.labels, arrays["t10k-labels-idx1-ubyte"])
    assert train.labels.dtype == np.int32
    raw_train, _ = loader(str(tmp_path), normalize=False)
    np.testing.assert_array_equal(raw_train.inputs[..., 0], arrays["train-images-idx3-ubyte"])


def test_load_mnist_missing_file_names_the_expected_files(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"MNIST test_labels: no file 't10k-labels-idx1-ubyte' or "
        r"'t10k-labels-idx1-ubyte.gz' in .*downloads nothing",
    ):
        load_mnist(str(tmp_path))


def test_load_mnist_mismatched_counts(tmp_path):
    _write_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match=r"images \(5, 28, 28\) and labels \(4,\)"):
        load_mnist(str(tmp_path))


def _cifar_records(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    # Each record: the label byte, then the red plane, the green plane, the blue plane.
    planes = images.transpose(0, 3, 1, 2).reshape(n, 3072)
    return np.concatenate([labels[:, None], planes], axis=1).tobytes(), images, labels


def _write_cifar(folder, per_batch=2):
    folder.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = [], []
    for i in range(1, 6):
        raw, images, labels = _cifar_records(per_batch, i)
        write(folder / f"data_batch_{i}.bin", raw)
        train_images.append(images)
        train_labels.append(labels)
    raw, test_images, test_labels = _cifar_records(3, 9)
    write(folder / "test_batch.bin", raw)
    return np.concatenate(train_images), np.concatenate(train_labels), test_images, test_labels


def test_read_cifar10_batch_is_channels_last(tmp_path):
    raw, images, labels = _cifar_records(4, 0)
    got_images, got_labels = read_cifar10_batch(str(write(tmp_path / "b.bin", raw)))
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    # The first pixel byte after the label is the red value of the top-left pixel.
    assert got_images[0, 0, 0, 0] == raw[1] and got_images[0, 0, 1, 0] == raw[2]


@pytest.mark.parametrize("nested", [False, True])
def test_load_cifar10(tmp_path, nested):
    folder = tmp_path / "cifar-10-batches-bin" if nested else tmp_path
    train_x, train_y, test_x, test_y = _write_cifar(folder)
    train, test = load_cifar10(str(tmp_path))
    assert train.inputs.shape == (10, 32, 32, 3) and test.inputs.shape == (3, 32, 32, 3)
    np.testing.assert_allclose(train.inputs, train_x / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(train.labels, train_y)
    np.testing.assert_allclose(test.inputs, test_x / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(test.labels, test_y)
    raw_train, _ = load_cifar10(str(tmp_path), normalize=False)
    np.testing.assert_array_equal(raw_train.inputs, train_x)


def test_load_cifar10_missing_files(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "data_batch_3.bin").unlink()
    (tmp_path / "test_batch.bin").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"missing \['data_batch_3.bin', 'test_batch.bin'\]"
    ):
        load_cifar10(str(tmp_path))


def test_cifar10_truncated_batch(tmp_path):
    raw, _, _ = _cifar_records(2, 0)
    path = write(tmp_path / "b.bin", raw[:-10])
    with pytest.raises(ValueError, match="not a whole number of CIFAR-10 records of 3073 bytes"):
        read_cifar10_batch(str(path))


def test_cifar10_bad_label(tmp_path):
    record = bytes([42]) + bytes(3072)
    with pytest.raises(ValueError, match="label byte 42 is not a CIFAR-10 class"):
        read_cifar10_batch(str(write(tmp_path / "b.bin", record)))
