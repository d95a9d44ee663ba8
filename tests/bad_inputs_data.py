"""Bad inputs of the data helpers: data sets, batching, text and augmentation."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from bad_input import Bad

import jaxnets as jn
from jaxnets.data import ArrayDataset

AREA = "data"
# every file and folder the cases make lies under one folder, removed at exit
_ROOT = tempfile.mkdtemp(prefix="jn-bad-inputs-")
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


def _data(n=10):
    return ArrayDataset(np.ones((n, 2), np.float32), np.zeros(n, np.int32))


def _text_file(text="hello world"):
    fd, path = tempfile.mkstemp(suffix=".txt", dir=_ROOT)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def _images():
    return jnp.ones((2, 4, 4, 1))


CASES = [
    Bad(
        AREA,
        "batches batch_size zero",
        lambda: jn.data.batches(_data(), 0),
        ValueError,
        ("batches", "batch_size", "0"),
    ),
    Bad(
        AREA,
        "batches batch_size float",
        lambda: jn.data.batches(_data(), 2.5),
        TypeError,
        ("batches", "batch_size", "2.5"),
    ),
    Bad(
        AREA,
        "batches shuffle string",
        lambda: jn.data.batches(_data(), 2, shuffle="False"),
        TypeError,
        ("batches", "shuffle", "'False'"),
    ),
    Bad(
        AREA,
        "batches start negative",
        lambda: jn.data.batches(_data(), 2, start=-1),
        ValueError,
        ("batches", "start", "-1"),
    ),
    Bad(
        AREA,
        "batches of a tuple",
        lambda: jn.data.batches((np.ones((4, 2)), np.ones(4)), 2),
        TypeError,
        ("batches", "tuple", "ArrayDataset"),
    ),
    Bad(
        AREA,
        "batches inputs a list",
        lambda: jn.data.batches(ArrayDataset([[0.0, 1.0]] * 4, np.zeros(4, np.int32)), 2),
        TypeError,
        ("ArrayDataset", "inputs", "list"),
    ),
    Bad(
        AREA,
        "batches lengths differ",
        lambda: jn.data.batches(ArrayDataset(np.ones((4, 2)), np.zeros(3)), 2),
        ValueError,
        ("ArrayDataset", "4 inputs", "3 labels"),
    ),
    Bad(
        AREA,
        "steps_per_epoch batch_size zero",
        lambda: jn.data.steps_per_epoch(_data(), 0),
        ValueError,
        ("steps_per_epoch", "batch_size", "0"),
    ),
    Bad(
        AREA,
        "steps_per_epoch batch_size bool",
        lambda: jn.data.steps_per_epoch(_data(), True),
        TypeError,
        ("steps_per_epoch", "batch_size", "True"),
    ),
    Bad(
        AREA,
        "eval_batches batch_size zero",
        lambda: jn.data.eval_batches(_data(), 0),
        ValueError,
        ("eval_batches", "batch_size", "0"),
    ),
    Bad(
        AREA,
        "eval_batches batch_size negative",
        lambda: jn.data.eval_batches(_data(), -4),
        ValueError,
        ("eval_batches", "batch_size", "-4"),
    ),
    Bad(
        AREA,
        "epoch_order seed negative",
        lambda: jn.data.epoch_order(10, -1, 0),
        ValueError,
        ("epoch_order", "seed", "-1"),
    ),
    Bad(
        AREA,
        "prefetch_to_device size negative",
        lambda: jn.data.prefetch_to_device(iter([np.ones(2)]), size=-1),
        ValueError,
        ("prefetch_to_device", "size", "-1"),
    ),
    Bad(
        AREA,
        "load_text max_chars zero",
        lambda: jn.data.load_text(_text_file(), max_chars=0),
        ValueError,
        ("load_text", "max_chars", "0"),
    ),
    Bad(
        AREA,
        "load_text max_chars negative",
        lambda: jn.data.load_text(_text_file(), max_chars=-5),
        ValueError,
        ("load_text", "max_chars", "-5"),
    ),
    Bad(
        AREA,
        "load_text path a number",
        lambda: jn.data.load_text(3),
        TypeError,
        ("load_text", "path", "3"),
    ),
    Bad(
        AREA,
        "split_text val_fraction above one",
        lambda: jn.data.split_text("abcdef", 1.5),
        ValueError,
        ("split_text", "val_fraction", "1.5"),
    ),
    Bad(
        AREA,
        "split_text val_fraction string",
        lambda: jn.data.split_text("abcdef", "0.1"),
        TypeError,
        ("split_text", "val_fraction", "'0.1'"),
    ),
    Bad(
        AREA,
        "tbptt_windows seq_len zero",
        lambda: jn.data.tbptt_windows(np.arange(50), 2, 0),
        ValueError,
        ("tbptt_windows", "seq_len", "0"),
    ),
    Bad(
        AREA,
        "stdlib_corpus max_chars float",
        lambda: jn.data.stdlib_corpus(100.0),
        TypeError,
        ("stdlib_corpus", "max_chars", "100.0"),
    ),
    Bad(
        AREA,
        "Augment crop_padding negative",
        lambda: jn.data.Augment(crop_padding=-1),
        ValueError,
        ("Augment: crop_padding", "-1", "int >= 0"),
    ),
    Bad(
        AREA,
        "Augment pad_mode unknown",
        lambda: jn.data.Augment(1, pad_mode="mirror"),
        ValueError,
        ("Augment: pad_mode", "'mirror'", "'reflect'"),
    ),
    Bad(
        AREA,
        "Augment flip string",
        lambda: jn.data.Augment(flip="yes"),
        TypeError,
        ("Augment: flip", "'yes'", "True or False"),
    ),
    Bad(
        AREA,
        "augmentation contrast one",
        lambda: jn.data.augmentation(contrast=1.0),
        ValueError,
        ("augmentation: contrast", "1.0", "< 1"),
    ),
    Bad(
        AREA,
        "augmentation crop_padding float",
        lambda: jn.data.augmentation(crop_padding=1.5),
        TypeError,
        ("augmentation: crop_padding", "1.5"),
    ),
    Bad(
        AREA,
        "random_brightness max_delta nan",
        lambda: jn.data.random_brightness(jax.random.key(0), _images(), float("nan")),
        ValueError,
        ("random_brightness", "max_delta", "nan"),
    ),
    Bad(
        AREA,
        "random_crop padding triple",
        lambda: jn.data.random_crop(jax.random.key(0), _images(), (1, 2, 3)),
        TypeError,
        ("random_crop: padding", "(1, 2, 3)"),
    ),
    Bad(
        AREA,
        "random_contrast without a key",
        lambda: jn.data.random_contrast(None, _images(), 0.5),
        ValueError,
        ("random_contrast", "PRNG key"),
    ),
]
