"""Resuming a run from its checkpoints gives bitwise the result of an uninterrupted run."""

import glob
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets.train.callbacks import Callback
from jaxnets.train.checkpoint import (
    PAUSE_ENV,
    CheckpointError,
    CheckpointManager,
    read_checkpoint,
)

# 192 examples, batch 32: 6 steps per epoch. Dropout makes the run use its PRNG key.
SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, numpy as np, optax, jaxnets as jn
    out, ckpt, epochs, resume = sys.argv[1:]
    result = jn.fit(
        jn.models.mlp((16,), 2, dropout=0.2), jn.data.two_spirals(96), epochs=int(epochs),
        optimizer=optax.adam(1e-2), batch_size=32, seed=3, progress=False,
        checkpoint_dir=ckpt or None, resume=resume == "1",
    )
    leaves = jax.tree.leaves(result.state.params)
    np.savez(out, loss=np.asarray(result.history["loss"]), *[np.asarray(p) for p in leaves])
    """
)


def _fit(epochs, **kwargs):
    return jn.fit(
        jn.models.mlp((16,), 2, dropout=0.2),
        jn.data.two_spirals(96),
        optimizer=optax.adam(1e-2),
        epochs=epochs,
        batch_size=32,
        seed=3,
        progress=False,
        **kwargs,
    )


def _assert_bitwise(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _without_time(history):
    return {k: v for k, v in history.items() if k != "epoch_time"}


def test_resume_at_epoch_end_is_bitwise(tmp_path):
    full = _fit(4)
    _fit(2, checkpoint_dir=str(tmp_path), resume=True)
    resumed = _fit(4, checkpoint_dir=str(tmp_path), resume=True)
    _assert_bitwise(full.state.params, resumed.state.params)
    _assert_bitwise(full.state.opt_state, resumed.state.opt_state)
    assert int(resumed.state.step) == 24
    assert _without_time(resumed.history) == _without_time(full.history)


class _StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, run, metrics):
        return run.step == self.step


def test_resume_mid_epoch_is_bitwise(tmp_path):
    full = _fit(3)
    # Interrupt at step 10 (epoch 2, batch 4); the last checkpoint is from step 8.
    _fit(3, checkpoint_dir=str(tmp_path), checkpoint_every_steps=4, callbacks=[_StopAt(10)])
    manager = CheckpointManager(str(tmp_path))
    meta = read_checkpoint(manager.latest())[1]
    assert (meta["step"], meta["epoch"], meta["batch"]) == (8, 1, 2)
    assert len(meta["epoch_metrics"]) == 2
    resumed = _fit(3, checkpoint_dir=str(tmp_path), checkpoint_every_steps=4, resume=True)
    _assert_bitwise(full.state.params, resumed.state.params)
    assert _without_time(resumed.history) == _without_time(full.history)


def test_resume_checks_the_run_matches(tmp_path):
    _fit(1, checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"written with batch_size=32, this run has batch_size=16"):
        jn.fit(
            jn.models.mlp((16,), 2, dropout=0.2),
            jn.data.two_spirals(96),
            optimizer=optax.adam(1e-2),
            epochs=2,
            batch_size=16,
            seed=3,
            progress=False,
            checkpoint_dir=str(tmp_path),
            resume=True,
        )
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir="):
        _fit(1, resume=True)


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    fresh = _fit(1, checkpoint_dir=str(tmp_path / "new"), resume=True)
    _assert_bitwise(_fit(1).state.params, fresh.state.params)


def _run(args, env=None):
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _finish(proc):
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode()


def test_sigkill_while_writing_a_checkpoint_then_resume_is_bitwise(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    # Uninterrupted reference, in its own process (started now, runs meanwhile).
    reference = _run([str(tmp_path / "full.npz"), "", "4", "0"])
    # The third checkpoint (step 18) pauses half-written; we SIGKILL the process then.
    victim = _run([str(tmp_path / "never.npz"), ckpt, "4", "0"], {PAUSE_ENV: "18"})
    deadline = time.monotonic() + 300
    paused = []
    while not paused and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.1)
        paused = glob.glob(os.path.join(ckpt, ".ckpt-00000018.jnc.tmp-*.paused"))
    assert paused, victim.communicate()[0].decode()
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    partial = paused[0][: -len(".paused")]
    assert os.path.getsize(partial) > 0  # half a checkpoint was on disk
    assert not os.path.exists(os.path.join(ckpt, "ckpt-00000018.jnc"))

    # The previous checkpoint is intact and restores.
    manager = CheckpointManager(ckpt)
    assert not os.path.exists(partial)  # the manager removed the dead writer's temp file
    assert manager.steps() == [6, 12]
    meta = read_checkpoint(manager.latest())[1]
    assert (meta["step"], meta["epoch"], meta["batch"]) == (12, 2, 0)

    _finish(_run([str(tmp_path / "resumed.npz"), ckpt, "4", "1"]))
    _finish(reference)
    full, resumed = np.load(tmp_path / "full.npz"), np.load(tmp_path / "resumed.npz")
    assert sorted(full.files) == sorted(resumed.files)
    for name in full.files:
        np.testing.assert_array_equal(full[name], resumed[name], err_msg=name)


def _files(folder):
    """Every file of ``folder`` by name, with its bytes."""
    return {p.name: p.read_bytes() for p in pathlib.Path(folder).iterdir()}


def _damage(path):
    """Truncate the file at ``path`` (a new file: best.jnc, a hard link, keeps the old one)."""
    data = pathlib.Path(path).read_bytes()
    os.remove(path)
    pathlib.Path(path).write_bytes(data[:200])


def test_nothing_lost_when_a_resume_is_refused(tmp_path):
    ckpt = str(tmp_path)
    _fit(2, checkpoint_dir=ckpt)
    before = _files(ckpt)
    with pytest.raises(ValueError, match="batch_size=32, this run has batch_size=16"):
        jn.fit(
            jn.models.mlp((16,), 2, dropout=0.2),
            jn.data.two_spirals(96),
            optimizer=optax.adam(1e-2),
            epochs=4,
            batch_size=16,
            seed=3,
            progress=False,
            checkpoint_dir=ckpt,
            resume=True,
        )
    assert _files(ckpt) == before


def test_nothing_lost_when_a_fresh_run_meets_a_runs_checkpoints(tmp_path):
    ckpt = str(tmp_path)
    _fit(2, checkpoint_dir=ckpt)
    before = _files(ckpt)
    with pytest.raises(
        ValueError, match=r"already holds the checkpoints of a run \(steps \[6, 12\]\)"
    ):
        _fit(3, checkpoint_dir=ckpt)
    assert _files(ckpt) == before


def test_resume_from_only_damaged_checkpoints_is_an_error_and_keeps_them(tmp_path):
    ckpt = str(tmp_path)
    _fit(2, checkpoint_dir=ckpt)
    manager = CheckpointManager(ckpt)
    for step in manager.steps():
        _damage(manager.path_for(step))
    before = _files(ckpt)
    with pytest.raises(CheckpointError, match="every checkpoint there is damaged"):
        _fit(4, checkpoint_dir=ckpt, resume=True)
    assert _files(ckpt) == before


def test_resume_skips_a_damaged_latest_with_a_warning(tmp_path):
    ckpt = str(tmp_path)
    _fit(2, checkpoint_dir=ckpt)
    manager = CheckpointManager(ckpt)
    _damage(manager.path_for(12))
    with pytest.warns(UserWarning, match="skipping a damaged checkpoint"):
        resumed = _fit(2, checkpoint_dir=ckpt, resume=True)
    assert int(resumed.state.step) == 12  # the second epoch again, from step 6
    _assert_bitwise(_fit(2).state.params, resumed.state.params)


def test_nothing_lost_when_the_loss_becomes_nan(tmp_path):
    ckpt = str(tmp_path)
    _fit(1, checkpoint_dir=ckpt)
    before = _files(ckpt)
    spirals = jn.data.two_spirals(96)
    poisoned = jn.data.ArrayDataset(np.full_like(spirals.inputs, np.nan), spirals.labels)
    with pytest.raises(FloatingPointError, match="the training loss became nan"):
        jn.fit(
            jn.models.mlp((16,), 2, dropout=0.2),
            poisoned,
            optimizer=optax.adam(1e-2),
            epochs=3,
            batch_size=32,
            seed=3,
            progress=False,
            checkpoint_dir=ckpt,
            checkpoint_every_steps=1,
            resume=True,
        )
    # every earlier file is unchanged; only the new run's checkpoints could be added
    after = _files(ckpt)
    assert {k: after[k] for k in before} == before
