"""Callbacks: protocol, early stopping, loggers, TensorBoard, learning rate, NaN guard."""

import csv
import glob
import json
import os

import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets.data import ArrayDataset, epoch_order
from jaxnets.optim import make_optimizer, schedule
from jaxnets.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLinesLogger,
    LearningRateLogger,
    TensorBoard,
)
from jaxnets.train.checkpoint import CheckpointManager, read_checkpoint, restore_checkpoint

DATA = jn.data.two_spirals(64)  # 128 examples: 4 steps of 32 per epoch


def _fit(epochs=3, optimizer=None, **kwargs):
    return jn.fit(
        jn.models.mlp((8,), 2),
        kwargs.pop("data", DATA),
        optimizer=optimizer or optax.adam(1e-2),
        epochs=epochs,
        batch_size=32,
        progress=False,
        **kwargs,
    )


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, run):
        self.calls.append(("begin", run.epoch, run.step))

    def on_step_end(self, run, metrics):
        self.calls.append(("step", run.epoch, run.step, sorted(metrics)))

    def on_epoch_end(self, run, logs):
        self.calls.append(("epoch", run.epoch, run.step, sorted(logs)))

    def on_train_end(self, run):
        self.calls.append(("end", run.epoch, run.step))


def test_protocol_order_and_arguments():
    rec = Recorder()
    _fit(2, val_data=DATA, callbacks=[rec])
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["begin", *["step"] * 4, "epoch", *["step"] * 4, "epoch", "end"]
    assert rec.calls[1] == ("step", 0, 1, ["accuracy", "loss"])
    assert rec.calls[5] == (
        "epoch",
        1,
        4,
        ["accuracy", "epoch_time", "loss", "val_accuracy", "val_loss"],
    )
    assert rec.calls[-1] == ("end", 2, 8)


def test_callback_adds_logs_seen_by_history_and_later_callbacks():
    class Add(Callback):
        def on_epoch_end(self, run, logs):
            logs["double_loss"] = 2 * logs["loss"]

    rec = Recorder()
    result = _fit(2, callbacks=[Add(), rec])
    assert "double_loss" in rec.calls[5][3]
    np.testing.assert_allclose(result.history["double_loss"], 2 * np.array(result.history["loss"]))


def test_on_train_end_runs_after_an_error():
    class Boom(Callback):
        def on_epoch_end(self, run, logs):
            raise RuntimeError("boom")

    rec = Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        _fit(2, callbacks=[rec, Boom()])
    assert rec.calls[-1][0] == "end"


def test_early_stopping_stops_and_rebuilds_on_resume(tmp_path):
    # A learning rate of 0 never improves: stop after 1 + patience epochs.
    stop = EarlyStopping("loss", patience=2)
    result = _fit(10, optimizer=optax.sgd(0.0), callbacks=[stop])
    assert len(result.history["loss"]) == 3
    assert stop.stopped_epoch == 3
    # Resume after 2 epochs: the waiting count is rebuilt from the history.
    _fit(2, optimizer=optax.sgd(0.0), checkpoint_dir=str(tmp_path), resume=True)
    again = EarlyStopping("loss", patience=2)
    resumed = _fit(
        10,
        optimizer=optax.sgd(0.0),
        callbacks=[again],
        checkpoint_dir=str(tmp_path),
        resume=True,
    )
    assert len(resumed.history["loss"]) == 3


def test_early_stopping_names_missing_metric(tmp_path):
    # refused before training: the history will hold no val_loss without val_data
    log = str(tmp_path / "m.jsonl")
    with pytest.raises(ValueError, match=r"monitor 'val_loss' is not an entry of the history"):
        _fit(1, callbacks=[JSONLinesLogger(log), EarlyStopping()])
    assert not os.path.exists(log)  # no callback ran
    # with a custom callback (which may add entries) it is checked at the first epoch end
    with pytest.raises(ValueError, match=r"monitor 'val_loss' is not in the epoch logs"):
        _fit(1, callbacks=[Recorder(), EarlyStopping()])


def test_checkpoint_monitor_missing_is_refused_before_saving(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    with pytest.raises(ValueError, match=r"'val_acc' is not an entry of the history.*val_accuracy"):
        _fit(1, val_data=DATA, checkpoint_dir=ckpt, checkpoint_monitor="val_acc")
    assert not os.path.exists(ckpt)
    # not knowable before the run (a custom callback): at the first epoch end, before saving
    with pytest.raises(ValueError, match=r"checkpoint_monitor 'val_acc' is not an entry"):
        _fit(1, callbacks=[Recorder()], checkpoint_dir=ckpt, checkpoint_monitor="val_acc")
    assert CheckpointManager(ckpt).steps() == []
    # an entry a callback adds is fine
    result = _fit(
        1,
        callbacks=[LearningRateLogger(lambda step: 0.1, name="my_lr")],
        checkpoint_dir=str(tmp_path / "ok"),
        checkpoint_monitor="my_lr",
    )
    assert result.history["my_lr"] == [pytest.approx(0.1)]


def test_jsonl_and_csv_loggers_and_resume_trims(tmp_path):
    jsonl, csv_path = str(tmp_path / "m.jsonl"), str(tmp_path / "m.csv")
    ckpt = str(tmp_path / "ckpt")
    _fit(2, checkpoint_dir=ckpt, callbacks=[JSONLinesLogger(jsonl), CSVLogger(csv_path)])
    # An interrupted run wrote a third epoch after the last checkpoint it kept:
    manager = CheckpointManager(ckpt)
    with open(jsonl, "a") as f:
        f.write(json.dumps({"epoch": 3, "loss": -1.0}) + "\n")
    with open(csv_path, "a") as f:
        f.write("3,12,0.0,-1.0,0.0\n")
    assert manager.steps() == [4, 8]
    result = _fit(
        3,
        checkpoint_dir=ckpt,
        resume=True,
        callbacks=[JSONLinesLogger(jsonl), CSVLogger(csv_path)],
    )
    with open(jsonl) as f:
        rows = [json.loads(line) for line in f]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["loss"] for r in rows] == result.history["loss"]
    with open(csv_path, newline="") as f:
        table = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in table] == [1, 2, 3]
    assert [float(r["loss"]) for r in table] == result.history["loss"]
    assert list(table[0]) == ["epoch", "step", "accuracy", "loss", "epoch_time"]


def _scalars(path):
    """The scalars of a TensorBoard event file: {tag: [(step, value), ...]} (TFRecords)."""
    from tensorboardX.proto import event_pb2

    values = {}
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 8], "little")
        event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
        pos += 12 + length + 4
        for v in event.summary.value:
            values.setdefault(v.tag, []).append((event.step, v.simple_value))
    return values


def test_tensorboard_writes_events(tmp_path):
    logdir = str(tmp_path / "tb")
    result = _fit(2, callbacks=[TensorBoard(logdir, every_steps=2)])
    files = glob.glob(os.path.join(logdir, "events.out.tfevents.*"))
    assert len(files) == 1
    values = _scalars(files[0])
    assert [s for s, _ in values["epoch/loss"]] == [1, 2]
    np.testing.assert_allclose(
        [v for _, v in values["epoch/loss"]], result.history["loss"], rtol=1e-6
    )
    assert [s for s, _ in values["step/loss"]] == [2, 4, 6, 8]


def test_learning_rate_is_logged_from_injected_hyperparams():
    sched = schedule("cosine", 0.1, 12)
    result = _fit(3, optimizer=make_optimizer("momentum", sched))
    # After epoch e (4 steps each) the last update used schedule(4 * e - 1).
    expected = [float(sched(4 * e - 1)) for e in (1, 2, 3)]
    np.testing.assert_allclose(result.history["lr"], expected, rtol=1e-6)
    assert result.history["lr"][0] > result.history["lr"][2]


def test_learning_rate_through_multisteps_and_clipping():
    sched = schedule("linear", 0.1, 6)
    result = _fit(3, optimizer=make_optimizer("adam", sched, accumulate_steps=2, clip_norm=1.0))
    # 2 updates per epoch: after epoch e the last update was number 2e - 1.
    np.testing.assert_allclose(
        result.history["lr"], [float(sched(2 * e - 1)) for e in (1, 2, 3)], rtol=1e-6
    )


def test_learning_rate_logger_for_plain_optax_schedules():
    sched = optax.exponential_decay(0.1, 4, 0.5)
    result = _fit(2, optimizer=optax.sgd(sched), callbacks=[LearningRateLogger(sched)])
    np.testing.assert_allclose(result.history["lr"], [float(sched(3)), float(sched(7))])


def _with_nan(index):
    inputs = DATA.inputs.copy()
    inputs[index] = np.nan
    return ArrayDataset(inputs, DATA.labels)


def test_non_finite_loss_stops_naming_the_step_and_keeps_checkpoints(tmp_path):
    # Put a NaN in the example that epoch 0 (seed 0) visits in its third batch.
    order = epoch_order(len(DATA), 0, 0)
    data = _with_nan(int(order[2 * 32 + 5]))
    jsonl = str(tmp_path / "m.jsonl")
    ckpt = str(tmp_path / "ckpt")
    with pytest.raises(FloatingPointError) as info:
        _fit(
            3,
            data=data,
            checkpoint_dir=ckpt,
            checkpoint_every_steps=1,
            keep_checkpoints=10,
            callbacks=[JSONLinesLogger(jsonl)],
        )
    message = str(info.value)
    assert "the training loss became nan at step 2 " in message
    assert "epoch 1, batch 3 of 4" in message
    assert ckpt in message
    # The checkpoints written before the NaN are intact and hold finite parameters.
    manager = CheckpointManager(ckpt)
    assert manager.steps() == [1, 2]
    for step in manager.steps():
        arrays, meta = read_checkpoint(manager.path_for(step))
        assert all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")
    template = jn.create_train_state(jn.models.mlp((8,), 2), optax.adam(1e-2), (32, 2))
    restored, meta = restore_checkpoint(manager.latest(), template)
    assert int(restored.step) == 2 and meta["batch"] == 2
    with open(jsonl) as f:
        assert f.read() == ""  # no epoch finished, nothing logged
