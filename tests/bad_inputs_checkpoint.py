"""Bad inputs of checkpoints: damaged files, bad manager arguments, fit's checkpoint options."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import struct
import tempfile

import numpy as np
import optax
from bad_input import Bad
from flax import serialization

import jaxnets as jn
from jaxnets.train.callbacks import Checkpointing
from jaxnets.train.checkpoint import (
    MAGIC,
    VERSION,
    CheckpointError,
    CheckpointManager,
    decode,
    restore_checkpoint,
    save_checkpoint,
)

_HEADER = struct.Struct("<IQ32s")  # version, payload length, sha256 (the file format)

AREA = "checkpoint"
# every file and folder the cases make lies under one folder, removed at exit
_ROOT = tempfile.mkdtemp(prefix="jn-bad-inputs-")
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


def _framed(content) -> bytes:
    """A file with a valid header and checksum around ``content``."""
    payload = serialization.msgpack_serialize(content)
    digest = hashlib.sha256(payload).digest()
    return MAGIC + _HEADER.pack(VERSION, len(payload), digest) + payload


def _ts(features=3):
    return jn.create_train_state(jn.serial(jn.Dense(features)), optax.sgd(0.1), (4, 2))


def _folder():
    return tempfile.mkdtemp(dir=_ROOT)


def _fit(**changes):
    data = jn.data.ArrayDataset(np.ones((8, 2), np.float32), (np.arange(8) % 3).astype(np.int32))
    kwargs = dict(optimizer=optax.sgd(0.1), epochs=1, batch_size=4, progress=False)
    kwargs.update(changes)
    return lambda: jn.fit(jn.serial(jn.Dense(3)), data, **kwargs)


def _all_damaged():
    folder = _folder()
    manager = CheckpointManager(folder)
    for step in (2, 4):
        with open(manager.path_for(step), "wb") as f:
            f.write(b"JAXNETS-CKPT\n half a file")
    return _fit(checkpoint_dir=folder, resume=True)()


def _file():
    fd, path = tempfile.mkstemp(suffix=".txt", dir=_ROOT)
    os.close(fd)
    return path


def _saved():
    path = os.path.join(_folder(), "ckpt.jnc")
    save_checkpoint(path, _ts(), {"epoch": 0})
    return path


def _run_with_checkpoints():
    folder = _folder()
    _fit(checkpoint_dir=folder)()
    return folder


CASES = [
    Bad(
        AREA,
        "decode payload without arrays",
        lambda: decode(_framed({"meta": "{}"}), "f.jnc"),
        CheckpointError,
        ("f.jnc", "lacks", "'arrays'"),
    ),
    Bad(
        AREA,
        "decode payload without meta",
        lambda: decode(_framed({"arrays": {}}), "f.jnc"),
        CheckpointError,
        ("f.jnc", "lacks", "'meta'"),
    ),
    Bad(
        AREA,
        "decode meta that is not JSON",
        lambda: decode(_framed({"arrays": {}, "meta": "{not json"}), "f.jnc"),
        CheckpointError,
        ("f.jnc", "'meta'", "JSON"),
    ),
    Bad(
        AREA,
        "decode payload a list",
        lambda: decode(_framed([1, 2]), "f.jnc"),
        CheckpointError,
        ("f.jnc", "payload", "list"),
    ),
    Bad(
        AREA, "decode a str", lambda: decode("JAXNETS-CKPT"), TypeError, ("decode", "bytes", "str")
    ),
    Bad(
        AREA,
        "decode another file",
        lambda: decode(b"PK\x03\x04 a zip file" * 4, "f.jnc"),
        CheckpointError,
        ("f.jnc", "not a jaxnets checkpoint", "magic"),
    ),
    Bad(
        AREA,
        "restore into another model",
        lambda: restore_checkpoint(_saved(), _ts(5)),
        ValueError,
        ("ckpt.jnc", "bias", "(5,)"),
    ),
    Bad(
        AREA,
        "save meta with a numpy scalar",
        lambda: save_checkpoint(os.path.join(_folder(), "c.jnc"), _ts(), {"loss": np.float32(0.5)}),
        TypeError,
        ("meta", "JSON", "float32"),
    ),
    Bad(
        AREA,
        "save into a folder",
        lambda: save_checkpoint(_folder(), _ts(), {}),
        IsADirectoryError,
        ("save_checkpoint", "folder", "ckpt.jnc"),
    ),
    Bad(
        AREA,
        "manager keep zero",
        lambda: CheckpointManager(_folder(), keep=0),
        ValueError,
        ("CheckpointManager", "keep", "0"),
    ),
    Bad(
        AREA,
        "manager keep float",
        lambda: CheckpointManager(_folder(), keep=2.5),
        TypeError,
        ("CheckpointManager", "keep", "2.5"),
    ),
    Bad(
        AREA,
        "manager mode unknown",
        lambda: CheckpointManager(_folder(), mode="best"),
        ValueError,
        ("CheckpointManager", "mode", "'best'"),
    ),
    Bad(
        AREA,
        "manager directory a file",
        lambda: CheckpointManager(_file()),
        NotADirectoryError,
        ("CheckpointManager", "directory", ".txt"),
    ),
    Bad(
        AREA,
        "manager save without step",
        lambda: CheckpointManager(_folder()).save(_ts(), {"epoch": 1}),
        ValueError,
        ("save", "'step'", "['epoch']"),
    ),
    Bad(
        AREA,
        "Checkpointing every_steps zero",
        lambda: Checkpointing(CheckpointManager(_folder()), every_steps=0),
        ValueError,
        ("Checkpointing", "every_steps", "0"),
    ),
    Bad(
        AREA,
        "Checkpointing of a folder name",
        lambda: Checkpointing("ckpts"),
        TypeError,
        ("Checkpointing", "manager", "'ckpts'"),
    ),
    Bad(
        AREA,
        "fit checkpoint_monitor not in history",
        _fit(
            checkpoint_dir=os.path.join(_folder(), "never-created"),
            checkpoint_monitor="val_acc",
            val_data=jn.data.xor(2),
        ),
        ValueError,
        ("checkpoint_monitor", "'val_acc'", "val_accuracy"),
    ),
    Bad(
        AREA,
        "fit checkpoint_monitor without checkpoint_dir",
        _fit(checkpoint_monitor="loss"),
        ValueError,
        ("checkpoint_monitor", "'loss'", "checkpoint_dir"),
    ),
    Bad(
        AREA,
        "fit checkpoint_mode unknown",
        _fit(checkpoint_dir=os.path.join(_folder(), "unused"), checkpoint_mode="low"),
        ValueError,
        ("checkpoint_mode", "'low'", "'min'"),
    ),
    Bad(
        AREA,
        "fit keep_checkpoints zero",
        _fit(checkpoint_dir=os.path.join(_folder(), "unused"), keep_checkpoints=0),
        ValueError,
        ("keep_checkpoints", "0", "positive int"),
    ),
    Bad(
        AREA,
        "fit checkpoint_every_steps zero",
        _fit(checkpoint_dir=os.path.join(_folder(), "unused"), checkpoint_every_steps=0),
        ValueError,
        ("checkpoint_every_steps", "0"),
    ),
    Bad(
        AREA,
        "fit checkpoint_dir a file",
        _fit(checkpoint_dir=_file()),
        ValueError,
        ("checkpoint_dir", ".txt", "a file"),
    ),
    Bad(
        AREA,
        "fit resume without checkpoint_dir",
        _fit(resume=True),
        ValueError,
        ("resume=True", "checkpoint_dir"),
    ),
    Bad(
        AREA,
        "fit resume from all damaged checkpoints",
        _all_damaged,
        CheckpointError,
        ("cannot resume", "damaged", "ckpt-00000004.jnc"),
    ),
    Bad(
        AREA,
        "fit fresh run into a run's checkpoints",
        lambda: _fit(checkpoint_dir=_run_with_checkpoints())(),
        ValueError,
        ("checkpoint_dir", "steps [2]", "resume=True"),
    ),
]
