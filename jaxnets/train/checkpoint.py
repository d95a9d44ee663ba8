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

import glob
import hashlib
import json
import os
import re
import signal
import struct
import time
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxnets.core import check_tree_matches, path_str

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


# --------------------------------------------------------------------------- trees


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def flatten_state(tree: Any) -> dict[str, np.ndarray]:
    """Every leaf of ``tree`` as a host array under its ``a/b/c`` path (keys as key data).

    Args:
      tree: the pytree, such as a :class:`~jaxnets.train.state.TrainState`.

    Returns:
      A dict of numpy arrays by path, in the tree's order.
    """
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    flat: dict[str, np.ndarray] = {}
    for path, leaf in leaves:
        value = jax.random.key_data(leaf) if _is_key(leaf) else leaf
        flat[path_str(path)] = np.asarray(jax.device_get(value))
    return flat


def _template_specs(template: Any) -> dict[str, jax.ShapeDtypeStruct]:
    leaves = jax.tree_util.tree_flatten_with_path(template)[0]
    specs = {}
    for path, leaf in leaves:
        if _is_key(leaf):
            leaf = jax.eval_shape(jax.random.key_data, leaf)
        specs[path_str(path)] = jax.ShapeDtypeStruct(np.shape(leaf), jnp.result_type(leaf))
    return specs


def check_flat_matches(
    expected: Mapping[str, jax.ShapeDtypeStruct], actual: Mapping[str, Any], what: str
) -> None:
    """Check ``actual`` has every path of ``expected`` (in its order, so parameters are
    checked before optimizer state) with the same shape and dtype, and no other path.

    Args:
      expected: the shape and dtype of each path.
      actual: the arrays by path.
      what: the start of the error messages.

    Raises:
      ValueError: naming the first path that is missing, extra, or of another shape or dtype.
    """
    for path, spec in expected.items():
        if path not in actual:
            raise ValueError(f"{what}: missing '{path}' (expected shape {tuple(spec.shape)})")
        check_tree_matches({path: spec}, {path: actual[path]}, what)
    extra = [path for path in actual if path not in expected]
    if extra:
        raise ValueError(f"{what}: unexpected entries the model does not have: {extra[:5]}")


def unflatten_state(template: Any, flat: Mapping[str, np.ndarray], what: str = "checkpoint"):
    """Rebuild ``template``'s pytree from ``flat`` after checking paths, shapes, dtypes.

    Args:
      template: a pytree of the wanted structure, shapes and dtypes (and key types).
      flat: the arrays by path, as :func:`flatten_state` makes them.
      what: the start of the error message; a ValueError names the first path that differs.

    Returns:
      ``template``'s pytree holding ``flat``'s values as JAX arrays.
    """
    check_flat_matches(_template_specs(template), flat, what)
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    values = []
    for path, leaf in paths_leaves:
        value = jnp.asarray(flat[path_str(path)])
        if _is_key(leaf):
            value = jax.random.wrap_key_data(value, impl=jax.random.key_impl(leaf))
        values.append(value)
    return jax.tree_util.tree_unflatten(treedef, values)


# --------------------------------------------------------------------------- files


def encode(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bytes:
    """The bytes of a checkpoint file: header, then the msgpack payload.

    Args:
      arrays: the host arrays by path.
      meta: the JSON-able metadata.

    Returns:
      The bytes, for :func:`write_atomic`.
    """
    payload = serialization.msgpack_serialize(
        {"arrays": dict(arrays), "meta": json.dumps(dict(meta), sort_keys=True)}
    )
    digest = hashlib.sha256(payload).digest()
    return MAGIC + _HEADER.pack(VERSION, len(payload), digest) + payload


def decode(data: bytes, source: str = "checkpoint") -> tuple[dict[str, np.ndarray], dict]:
    """Check the header, length and checksum of ``data``; return ``(arrays, meta)``.

    Args:
      data: the bytes of a checkpoint file.
      source: what a :class:`CheckpointError` (bad header, length or checksum) calls it.

    Returns:
      ``(arrays, meta)``: the numpy arrays by path and the metadata dict.
    """
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
    content = serialization.msgpack_restore(payload)
    return dict(content["arrays"]), json.loads(content["meta"])


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
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        if not _test_pause(f, data, tmp, step):
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(directory)
    return path


def save_checkpoint(path: str, train_state: Any, meta: Mapping[str, Any] | None = None) -> str:
    """Save ``train_state`` (any pytree) and the JSON-able ``meta`` to ``path`` atomically.

    Args:
      path: the file.
      train_state: the pytree; its arrays are fetched to the host.
      meta: the metadata (None: empty); its ``step`` is seen by the test hook.

    Returns:
      ``path``, on every process; only process 0 writes.
    """
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


class CheckpointManager:
    """Keep the last ``keep`` checkpoints of a run and the best one by a metric.

    Files are ``ckpt-<step>.jnc`` and ``best.jnc``, a hard link to (or copy of) the best one.

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
        if keep < 1:
            raise ValueError(f"CheckpointManager: keep must be >= 1, got {keep}")
        if mode not in ("min", "max"):
            raise ValueError(f"CheckpointManager: mode must be 'min' or 'max', got {mode!r}")
        self.directory = os.path.abspath(directory)
        self.keep = keep
        self.monitor = monitor
        self.mode = mode
        os.makedirs(self.directory, exist_ok=True)
        for stale in glob.glob(os.path.join(self.directory, ".*.tmp-*")):
            os.remove(stale)  # temporary files of a writer that died
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
        """Save a checkpoint for ``meta["step"]``, update ``best.jnc``, drop old ones."""
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
        for step in reversed(self.steps()):
            path = self.path_for(step)
            try:
                read_checkpoint(path)
            except CheckpointError as e:
                warnings.warn(f"skipping a damaged checkpoint: {e}", stacklevel=2)
                continue
            return path
        return None

    def best_meta(self) -> dict | None:
        """The metadata of ``best.jnc``, or None when there is none."""
        best = self.best_path()
        return read_checkpoint(best)[1] if os.path.exists(best) else None

    def restore(self, template: Any, path: str | None = None) -> tuple[Any, dict] | None:
        """Restore ``path`` (default: :meth:`latest`) into ``template``; None if there is none."""
        path = path or self.latest()
        return None if path is None else restore_checkpoint(path, template)
