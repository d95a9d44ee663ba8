"""Checkpoint files: round trip, structure checks, damaged files, the manager."""

import hashlib
import os
import pathlib
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

import jaxnets as jn
from jaxnets.train.checkpoint import (
    HEADER_SIZE,
    MAGIC,
    STALE_AFTER,
    VERSION,
    CheckpointError,
    CheckpointManager,
    decode,
    read_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from jaxnets.train.checkpoint_format import _HEADER


def _state(model=None, features=(3,), opt=None):
    model = model or jn.serial(jn.Dense(4), jn.BatchNorm(), jn.Relu(), jn.Dense(2))
    opt = opt or optax.adam(1e-2)
    ts = jn.create_train_state(model, opt, (8, *features), seed=0)
    step = jn.make_train_step(model, "softmax_cross_entropy", opt, donate=False)
    x = np.random.default_rng(0).normal(size=(8, *features)).astype(np.float32)
    ts, _ = step(ts, (x, np.arange(8, dtype=np.int32) % 2))
    return ts


def _equal_trees(a, b):
    a = jax.tree.map(
        lambda x: (
            jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        ),
        a,
    )
    b = jax.tree.map(
        lambda x: (
            jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        ),
        b,
    )
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_is_bitwise(tmp_path):
    ts = _state()
    path = save_checkpoint(str(tmp_path / "a.jnc"), ts, {"epoch": 3, "batch": 1, "step": 1})
    restored, meta = restore_checkpoint(path, _state())
    _equal_trees(ts, restored)
    assert meta == {"epoch": 3, "batch": 1, "step": 1}
    assert jax.random.key_impl(restored.key) == jax.random.key_impl(ts.key)
    assert not [n for n in os.listdir(tmp_path) if ".tmp" in n]


def test_round_trip_keeps_optimizer_namedtuples_and_multisteps(tmp_path):
    opt = optax.MultiSteps(optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3)), 2)
    ts = _state(opt=opt)
    path = save_checkpoint(str(tmp_path / "m.jnc"), ts)
    restored, _ = restore_checkpoint(path, _state(opt=opt))
    _equal_trees(ts, restored)


def test_restore_into_other_model_names_path_and_shapes(tmp_path):
    path = save_checkpoint(str(tmp_path / "a.jnc"), _state(jn.serial(jn.Dense(4), jn.Dense(2))))
    other = _state(jn.serial(jn.Dense(5), jn.Dense(2)))
    with pytest.raises(ValueError) as info:
        restore_checkpoint(path, other)
    message = str(info.value)
    assert "'params/dense_0/bias' has shape (4,), the model expects (5,)" in message


def test_restore_reports_missing_and_extra_entries(tmp_path):
    path = save_checkpoint(str(tmp_path / "a.jnc"), _state(jn.serial(jn.Dense(2))))
    with pytest.raises(ValueError, match=r"missing 'params/dense_1/bias'"):
        restore_checkpoint(path, _state(jn.serial(jn.Dense(2), jn.Dense(2))))
    path = save_checkpoint(str(tmp_path / "b.jnc"), _state(jn.serial(jn.Dense(2), jn.Dense(2))))
    with pytest.raises(ValueError, match=r"unexpected entries .*dense_1"):
        restore_checkpoint(path, _state(jn.serial(jn.Dense(2))))


def test_restore_reports_dtype_mismatch(tmp_path):
    ts = _state(jn.Dense(2))
    path = save_checkpoint(str(tmp_path / "a.jnc"), ts)
    wide = ts._replace(params=jax.tree.map(lambda p: p.astype(jnp.bfloat16), ts.params))
    with pytest.raises(
        ValueError,
        match=r"'params/bias' has dtype float32, the model expects "
        r"bfloat16",
    ):
        restore_checkpoint(path, wide)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b[: HEADER_SIZE - 5], "not a jaxnets checkpoint"),
        (lambda b: b"", "not a jaxnets checkpoint"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]), "checksum"),
        (lambda b: b[: HEADER_SIZE + 10] + b"\x00" * 7 + b[HEADER_SIZE + 17 :], "checksum"),
        (lambda b: b"PK\x03\x04" + b[4:], "not a jaxnets checkpoint"),
        (lambda b: b + b"extra", "truncated or padded"),
    ],
)
def test_damaged_files_fail_clearly(tmp_path, damage, message):
    path = save_checkpoint(str(tmp_path / "a.jnc"), _state(jn.Dense(2)))
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(damage(data))
    with pytest.raises(CheckpointError, match=message) as info:
        restore_checkpoint(path, _state(jn.Dense(2)))
    assert path in str(info.value)


def test_manager_keeps_last_n_and_best(tmp_path):
    ts = _state(jn.Dense(2))
    manager = CheckpointManager(str(tmp_path), keep=2, monitor="val_loss", mode="min")
    for step, loss in [(10, 0.9), (20, 0.2), (30, 0.5), (40, 0.4)]:
        manager.save(ts, {"step": step, "logs": {"val_loss": loss}})
    assert manager.steps() == [30, 40]
    assert manager.best_meta()["step"] == 20
    assert manager.latest().endswith("ckpt-00000040.jnc")
    # A new manager on the same folder remembers the best value.
    again = CheckpointManager(str(tmp_path), keep=2, monitor="val_loss")
    again.save(ts, {"step": 50, "logs": {"val_loss": 0.3}})
    assert again.best_meta()["step"] == 20
    again.save(ts, {"step": 60, "logs": {"val_loss": 0.1}})
    assert again.best_meta()["step"] == 60


def test_manager_max_mode_and_non_finite_metric(tmp_path):
    ts = _state(jn.Dense(2))
    manager = CheckpointManager(str(tmp_path), keep=5, monitor="acc", mode="max")
    for step, acc in [(1, 0.5), (2, 0.7), (3, float("nan")), (4, 0.6)]:
        manager.save(ts, {"step": step, "logs": {"acc": acc}})
    assert manager.best_meta()["step"] == 2


def test_manager_skips_damaged_latest_and_cleans_temp_files(tmp_path):
    ts = _state(jn.Dense(2))
    manager = CheckpointManager(str(tmp_path), keep=3)
    manager.save(ts, {"step": 1})
    last = manager.save(ts, {"step": 2})
    with open(last, "r+b") as f:
        f.truncate(100)
    stale = tmp_path / f".ckpt-00000003.jnc.tmp-{_dead_pid()}"
    stale.write_bytes(b"half")
    manager = CheckpointManager(str(tmp_path), keep=3)
    assert not stale.exists()
    with pytest.warns(UserWarning, match="skipping a damaged checkpoint"):
        assert manager.latest().endswith("ckpt-00000001.jnc")


def test_manager_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="keep must be a positive int, got 0"):
        CheckpointManager(str(tmp_path), keep=0)
    with pytest.raises(ValueError, match="mode must be one of 'min', 'max', got 'best'"):
        CheckpointManager(str(tmp_path), mode="best")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_manager_keeps_the_temp_files_of_live_writers(tmp_path):
    live = tmp_path / f".ckpt-00000005.jnc.tmp-{os.getppid()}"  # a running process
    dead = tmp_path / f".ckpt-00000004.jnc.tmp-{_dead_pid()}"
    old = tmp_path / f".best.jnc.tmp-{os.getppid()}"
    for path in (live, dead, old):
        path.write_bytes(b"half")
    day_ago = time.time() - STALE_AFTER - 60
    os.utime(old, (day_ago, day_ago))  # untouched for a day: its writer is gone
    CheckpointManager(str(tmp_path))
    assert live.exists()
    assert not dead.exists() and not old.exists()


def test_decode_names_missing_entries_of_a_valid_payload():
    payload = serialization.msgpack_serialize({"arrays": {}})
    digest = hashlib.sha256(payload).digest()
    data = MAGIC + _HEADER.pack(VERSION, len(payload), digest) + payload
    with pytest.raises(CheckpointError, match=r"x.jnc: the payload lacks \['meta'\]"):
        decode(data, "x.jnc")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = str(tmp_path / "ckpt.jnc")
    save_checkpoint(path, _state(jn.Dense(2)), {"step": 1})
    before = pathlib.Path(path).read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, _state(jn.Dense(2)), {"step": 2})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.jnc"]
    assert pathlib.Path(path).read_bytes() == before


def test_a_failed_save_keeps_every_checkpoint_and_the_best(tmp_path, monkeypatch):
    ts = _state(jn.Dense(2))
    manager = CheckpointManager(str(tmp_path), keep=2, monitor="loss")
    for step, loss in [(1, 0.5), (2, 0.4)]:
        manager.save(ts, {"step": step, "logs": {"loss": loss}})
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk gone")))
    with pytest.raises(OSError, match="disk gone"):
        manager.save(ts, {"step": 3, "logs": {"loss": 0.1}})
    monkeypatch.undo()
    after = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    assert after == before  # nothing lost, nothing left behind


def test_read_checkpoint_gives_meta_and_flat_arrays(tmp_path):
    path = save_checkpoint(str(tmp_path / "a.jnc"), _state(jn.Dense(2)), {"step": 1})
    arrays, meta = read_checkpoint(path)
    assert meta["step"] == 1
    assert arrays["params/kernel"].shape == (3, 2)
    assert arrays["key"].dtype == np.uint32
