"""The bytes of a checkpoint file (see :mod:`jaxnets.train.checkpoint` for the format)
and their atomic writing: encode, decode with every check, write through a temporary
file that a failed write removes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from flax import serialization

MAGIC = b"JAXNETS-CKPT\n"
VERSION = 1
_HEADER = struct.Struct("<IQ32s")
HEADER_SIZE = len(MAGIC) + _HEADER.size
SUFFIX = ".jnc"
#: Test hook: when set to ``"STEP"``, the writer of the checkpoint for that step writes
#: half of its temporary file, creates ``<temp>.paused`` and waits to be killed.
PAUSE_ENV = "JAXNETS_TEST_CHECKPOINT_PAUSE"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupted, or not a checkpoint."""


# --------------------------------------------------------------------------- files


def encode(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bytes:
    """The bytes of a checkpoint file: header, then the msgpack payload.

    Args:
      arrays: the host arrays by path.
      meta: the JSON-able metadata.

    Returns:
      The bytes, for :func:`write_atomic`.
    """
    try:
        meta_text = json.dumps(dict(meta), sort_keys=True)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"save_checkpoint: meta must hold only JSON values (numbers, strings, lists, "
            f"dicts; convert NumPy scalars with float() or int()): {e}"
        ) from None
    payload = serialization.msgpack_serialize({"arrays": dict(arrays), "meta": meta_text})
    digest = hashlib.sha256(payload).digest()
    return MAGIC + _HEADER.pack(VERSION, len(payload), digest) + payload


def decode(data: bytes, source: str = "checkpoint") -> tuple[dict[str, np.ndarray], dict]:
    """Check the header, length and checksum of ``data``; return ``(arrays, meta)``.

    Args:
      data: the bytes of a checkpoint file.
      source: what a :class:`CheckpointError` (bad header, length or checksum) calls it.

    Returns:
      ``(arrays, meta)``: the numpy arrays by path and the metadata dict.

    Raises:
      CheckpointError: a bad header, length or checksum, or a payload that lacks its
        entries (``arrays``, a dict of arrays, and ``meta``, JSON text of a dict).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"decode: data must be bytes, got a {type(data).__name__}")
    data = bytes(data)
    if len(data) < HEADER_SIZE or not data.startswith(MAGIC):
        raise CheckpointError(
            f"{source}: not a jaxnets checkpoint (bad header; {len(data)} bytes, expected "
            f"the magic {MAGIC!r})"
        )
    version, length, digest = _HEADER.unpack_from(data, len(MAGIC))
    if version != VERSION:
        raise CheckpointError(f"{source}: format version {version}, this jaxnets reads {VERSION}")
    payload = data[HEADER_SIZE:]
    if len(payload) != length:
        raise CheckpointError(
            f"{source}: truncated or padded: the header announces {length} payload bytes, "
            f"the file has {len(payload)}"
        )
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"{source}: corrupted: the sha256 checksum of the payload differs")
    try:
        content = serialization.msgpack_restore(payload)
    except Exception as e:  # msgpack raises several types for bytes it cannot read
        raise CheckpointError(f"{source}: the payload is not msgpack ({e})") from None
    return _entries(content, source)


def _entries(content: Any, source: str) -> tuple[dict[str, np.ndarray], dict]:
    """``(arrays, meta)`` of a decoded payload, each checked."""
    if not isinstance(content, dict):
        raise CheckpointError(
            f"{source}: the payload must be a dict with 'arrays' and 'meta', got a "
            f"{type(content).__name__}"
        )
    missing = [k for k in ("arrays", "meta") if k not in content]
    if missing:
        raise CheckpointError(
            f"{source}: the payload lacks {missing} (it has {sorted(map(str, content))}); "
            f"it was not written by jaxnets' save_checkpoint"
        )
    arrays, meta_text = content["arrays"], content["meta"]
    if not isinstance(arrays, dict) or not all(
        isinstance(v, np.ndarray | np.generic) for v in arrays.values()
    ):
        raise CheckpointError(f"{source}: the payload's 'arrays' must be a dict of arrays")
    try:
        meta = json.loads(meta_text)
    except (TypeError, ValueError):
        meta = None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{source}: the payload's 'meta' must be the JSON text of a dict")
    return {k: np.asarray(v) for k, v in arrays.items()}, meta


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _test_pause(f, data: bytes, tmp: str, step: Any) -> bool:
    """The kill-while-writing test hook (see PAUSE_ENV); True if it took over the write."""
    wanted = os.environ.get(PAUSE_ENV)
    if wanted is None or str(step) != wanted:
        return False
    f.write(data[: len(data) // 2])
    f.flush()
    os.fsync(f.fileno())
    open(f"{tmp}.paused", "w").close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the test sends SIGKILL meanwhile
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)
    return True


def write_atomic(path: str, data: bytes, *, step: Any = None) -> str:
    """Write ``data`` to ``path`` atomically: temp file, fsync, rename, fsync folder.

    Args:
      path: the file; its folder is created if missing.
      data: the bytes.
      step: the step being saved, seen only by the test hook (``PAUSE_ENV``).

    Returns:
      ``path``.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if os.path.isdir(path):
        raise IsADirectoryError(f"write_atomic: {path} is a folder; give a file's path")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            if not _test_pause(f, data, tmp, step):
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a failed write leaves the old file and no temporary one
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(directory)
    return path
