"""Checkpoints: the whole training state in one checked, atomically written file.

A checkpoint file is a fixed header followed by a msgpack payload (``flax.serialization``)::

    magic  b"JAXNETS-CKPT\\n"  (13 bytes)
    version  uint32, little endian
    length   uint64: payload bytes
    sha256   32 bytes: digest of the payload
    payload  msgpack {"arrays": {path: ndarray}, "meta": json text}

``arrays`` holds every leaf of the :class:`~jaxnets.train.state.TrainState`
(params, state, optimizer state, step and the PRNG key as raw key data) under its
path, such as ``params/hidden_0/dense/kernel``. ``meta`` holds what the loop needs
to continue: the data-iterator position (epoch and batch), the history, the seed.

Files are written to a temporary name in the same folder, flushed and fsynced,
renamed over the final name, and the folder is fsynced: a crash leaves either the
old file or the new one, never half of one. On many hosts, arrays are fetched to the
host before writing (fully addressable or replicated arrays); process 0 writes. Sharded
per-host writing is left to orbax. Restoring checks every path, shape and dtype against
a template built from the model and names the first one that differs.

Example:
    >>> import os, tempfile, optax, jaxnets as jn
    >>> from jaxnets.train.checkpoint import save_checkpoint, restore_checkpoint
    >>> ts = jn.create_train_state(jn.Dense(2), optax.sgd(0.1), (4, 3))
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.jnc")
    >>> _ = save_checkpoint(path, ts, {"epoch": 0, "batch": 0})
    >>> restored, meta = restore_checkpoint(path, ts)
    >>> meta["epoch"], restored.params["kernel"].shape
    (0, (3, 2))
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jaxnets.core.arguments import choice, count
from jaxnets.train.checkpoint_format import (
    HEADER_SIZE,
    MAGIC,
    PAUSE_ENV,
    SUFFIX,
    VERSION,
    CheckpointError,
    _fsync_dir,
    decode,
    encode,
    write_atomic,
)
from jaxnets.train.checkpoint_trees import check_flat_matches, flatten_state, unflatten_state

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "PAUSE_ENV",
    "STALE_AFTER",
    "SUFFIX",
    "VERSION",
    "CheckpointError",
    "CheckpointManager",
    "check_flat_matches",
    "decode",
    "encode",
    "flatten_state",
    "read_checkpoint",
    "remove_abandoned_temps",
    "restore_checkpoint",
    "save_checkpoint",
    "unflatten_state",
    "write_atomic",
]


def save_checkpoint(path: str, train_state: Any, meta: Mapping[str, Any] | None = None) -> str:
    """Save ``train_state`` (any pytree) and the JSON-able ``meta`` to ``path`` atomically.

    Args:
      path: the file.
      train_state: the pytree; its arrays are fetched to the host.
      meta: the metadata (None: empty); its ``step`` is seen by the test hook.

    Returns:
      ``path``, on every process; only process 0 writes.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"save_checkpoint: path must be a file's path (a str), got {path!r}")
    if meta is not None and not isinstance(meta, Mapping):
        raise TypeError(f"save_checkpoint: meta must be a dict, got a {type(meta).__name__}")
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"save_checkpoint: path {os.fspath(path)!r} is a folder; give a file's path such "
            f"as {os.path.join(os.fspath(path), 'ckpt.jnc')!r}"
        )
    arrays = flatten_state(train_state)
    if jax.process_index() == 0:
        step = (meta or {}).get("step")
        write_atomic(path, encode(arrays, meta or {}), step=step)
    return path


def read_checkpoint(path: str) -> tuple[dict[str, np.ndarray], dict]:
    """``(arrays, meta)`` of the checkpoint at ``path``, checked (see :func:`decode`).

    Args:
      path: the file.

    Returns:
      ``(arrays, meta)``: the numpy arrays by path and the metadata dict.
    """
    with open(path, "rb") as f:
        data = f.read()
    return decode(data, path)


def restore_checkpoint(path: str, template: Any) -> tuple[Any, dict]:
    """Load ``path`` into the structure of ``template``.

    Args:
      path: the file.
      template: a pytree of the structure to fill, such as a fresh train state.

    Returns:
      ``(train_state, meta)``.

    Raises:
      CheckpointError: for a damaged file.
      ValueError: naming the path and both shapes, when the checkpoint does not fit.
    """
    arrays, meta = read_checkpoint(path)
    return unflatten_state(template, arrays, f"checkpoint {path}"), meta


# --------------------------------------------------------------------------- manager

_STEP_FILE = re.compile(r"^ckpt-(\d+)\.jnc$")
_TEMP_FILE = re.compile(r"^\..+\.tmp-(\d+)(\.paused)?$")
#: A temporary file whose writer cannot be seen (another host) counts as abandoned
#: once it has not been modified for this long (seconds).
STALE_AFTER = 24 * 3600


def _writer_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (True when that cannot be told)."""
    if pid == os.getpid() or os.name == "nt":  # os.kill would end a process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def remove_abandoned_temps(directory: str, *, now: float | None = None) -> list[str]:
    """Remove the temporary files in ``directory`` that no live writer will finish.

    A temporary file is named ``.<final name>.tmp-<pid>`` after the process writing it.
    It is removed when that process is not running on this host, or when it has not
    been modified for :data:`STALE_AFTER` seconds (a writer on another host sharing the
    folder); the files of a live writer (another run or process writing into the same
    folder right now) are left alone.

    Args:
      directory: the folder.
      now: the current time (None: ``time.time()``), for the age rule.

    Returns:
      The paths removed.
    """
    now = time.time() if now is None else now
    removed = []
    for name in os.listdir(directory):
        match = _TEMP_FILE.match(name)
        if match is None:
            continue
        path = os.path.join(directory, name)
        try:
            age = now - os.path.getmtime(path)
        except FileNotFoundError:  # its writer just renamed it
            continue
        if not _writer_alive(int(match.group(1))) or age > STALE_AFTER:
            try:
                os.remove(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


class CheckpointManager:
    """Keep the last ``keep`` checkpoints of a run and the best one by a metric.

    Files are ``ckpt-<step>.jnc`` and ``best.jnc``, a hard link to (or copy of) the best one.
    Opening a folder removes the temporary files of writers that died (see
    :func:`remove_abandoned_temps`), never those of a live one.

    Args:
      directory: the folder, created if missing.
      keep: how many step checkpoints to keep (the newest ones); at least 1.
      monitor: the metric in ``meta["logs"]`` that chooses ``best.jnc``; None for none.
      mode: ``"min"`` or ``"max"``: whether a smaller or larger ``monitor`` is better.

    Example:
        >>> import tempfile, optax, jaxnets as jn
        >>> ts = jn.create_train_state(jn.Dense(2), optax.sgd(0.1), (4, 3))
        >>> manager = CheckpointManager(tempfile.mkdtemp(), keep=2, monitor="loss")
        >>> for step, loss in [(1, 0.5), (2, 0.3), (3, 0.4)]:
        ...     _ = manager.save(ts, {"step": step, "logs": {"loss": loss}})
        >>> manager.steps(), manager.best_meta()["step"]
        ([2, 3], 2)
    """

    def __init__(
        self, directory: str, *, keep: int = 3, monitor: str | None = None, mode: str = "min"
    ):
        where = "CheckpointManager"
        if not isinstance(directory, str | os.PathLike):
            raise TypeError(
                f"{where}: directory must be a folder's path (a str), got {directory!r}"
            )
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise NotADirectoryError(
                f"{where}: directory must be a folder, got {os.fspath(directory)!r}, a file"
            )
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(
                f"{where}: monitor must be the name of a logged metric or None, got {monitor!r}"
            )
        self.directory = os.path.abspath(directory)
        self.keep = count(where, "keep", keep)
        self.monitor = monitor
        self.mode = choice(where, "mode", mode, ("min", "max"))
        os.makedirs(self.directory, exist_ok=True)
        remove_abandoned_temps(self.directory)
        self._best: float | None = None
        best = self.best_path()
        if monitor is not None and os.path.exists(best):
            try:
                self._best = read_checkpoint(best)[1].get("logs", {}).get(monitor)
            except CheckpointError as e:
                warnings.warn(f"ignoring a damaged best checkpoint: {e}", stacklevel=2)

    def path_for(self, step: int) -> str:
        return os.path.join(self.directory, f"ckpt-{int(step):08d}{SUFFIX}")

    def best_path(self) -> str:
        return os.path.join(self.directory, f"best{SUFFIX}")

    def steps(self) -> list[int]:
        """The steps of the step checkpoints present, oldest first."""
        found = (_STEP_FILE.match(name) for name in os.listdir(self.directory))
        return sorted(int(m.group(1)) for m in found if m)

    def _improves(self, value: float) -> bool:
        if self._best is None:
            return True
        return value < self._best if self.mode == "min" else value > self._best

    def save(self, train_state: Any, meta: Mapping[str, Any]) -> str:
        """Save a checkpoint for ``meta["step"]``, update ``best.jnc``, drop old ones.

        The new file is complete on disk before ``best.jnc`` moves to it and before any
        old one is removed: a save that fails leaves every earlier checkpoint as it was.
        """
        if not isinstance(meta, Mapping) or "step" not in meta:
            got = sorted(meta) if isinstance(meta, Mapping) else type(meta).__name__
            raise ValueError(
                f"CheckpointManager.save: meta must be a dict with the 'step' the checkpoint "
                f"is named after, got {got}"
            )
        path = save_checkpoint(self.path_for(meta["step"]), train_state, meta)
        if jax.process_index() != 0:
            return path
        value = meta.get("logs", {}).get(self.monitor) if self.monitor else None
        if value is not None and np.isfinite(value) and self._improves(value):
            tmp = os.path.join(self.directory, f".best{SUFFIX}.tmp-{os.getpid()}")
            try:
                os.link(path, tmp)
            except OSError:
                with open(path, "rb") as f:
                    write_atomic(tmp, f.read())
            os.replace(tmp, self.best_path())
            _fsync_dir(self.directory)
            self._best = float(value)
        for old in self.steps()[: -self.keep]:
            os.remove(self.path_for(old))
        return path

    def latest(self) -> str | None:
        """The newest intact step checkpoint (damaged ones are skipped with a warning), or None."""
        path, damaged = self.scan()
        for reason in damaged:
            warnings.warn(f"skipping a damaged checkpoint: {reason}", stacklevel=2)
        return path

    def scan(self) -> tuple[str | None, list[str]]:
        """The newest intact step checkpoint (or None) and why each newer one is damaged."""
        damaged = []
        for step in reversed(self.steps()):
            path = self.path_for(step)
            try:
                read_checkpoint(path)
            except CheckpointError as e:
                damaged.append(str(e))
                continue
            return path, damaged
        return None, damaged

    def best_meta(self) -> dict | None:
        """The metadata of ``best.jnc``, or None when there is none."""
        best = self.best_path()
        return read_checkpoint(best)[1] if os.path.exists(best) else None

    def restore(self, template: Any, path: str | None = None) -> tuple[Any, dict] | None:
        """Restore ``path`` (default: :meth:`latest`) into ``template``; None if there is none."""
        path = path or self.latest()
        return None if path is None else restore_checkpoint(path, template)
