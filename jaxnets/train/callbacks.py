"""Callbacks: small objects that :func:`~jaxnets.train.loop.fit` calls as it runs.

The protocol is four optional methods; each receives the :class:`Run` (the live view of
the run: train state, position, history); ``on_step_end`` and ``on_epoch_end`` may return
True to stop training::

    class Callback:
        def on_train_begin(self, run): ...          # once, before the first step
        def on_step_end(self, run, metrics): ...    # after every step (device arrays)
        def on_epoch_end(self, run, logs): ...      # after each epoch's evaluation
        def on_train_end(self, run): ...            # once, also after an error

``logs`` is the epoch's record (``loss``, metrics, ``val_*``, ``lr``, ``epoch_time``).
Callbacks run in list order; one may add entries to ``logs`` and the later ones, and
the history, see them. ``on_step_end`` gets the step's metrics as device arrays:
converting them to floats waits for the device, so do it only every few steps.

Example:
    >>> import optax, jaxnets as jn
    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, run, logs):
    ...         print(f"epoch {run.epoch} loss {logs['loss'] > 0}")
    >>> _ = jn.fit(jn.models.mlp((8,), 2), jn.data.xor(8), optimizer=optax.sgd(0.1),
    ...            epochs=2, batch_size=8, progress=False, callbacks=[PrintLoss()])
    epoch 1 loss True
    epoch 2 loss True
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from jaxnets.core.arguments import choice, count, number, received
from jaxnets.train.checkpoint import CheckpointManager

if TYPE_CHECKING:
    from tensorboardX import SummaryWriter

History = dict[str, list[float]]


@dataclass
class Run:
    """What callbacks see of a running :func:`fit`.

    ``epoch`` counts finished epochs once an epoch ends (so ``on_epoch_end`` of the
    first epoch sees 1) and ``batch`` the steps done in the current epoch: together
    they are the position of the data iterator that a checkpoint records. ``step`` is
    the number of train steps done since the run began (resumes included).
    """

    train_state: Any
    epochs: int
    steps_per_epoch: int
    seed: int
    batch_size: int
    epoch: int = 0
    batch: int = 0
    step: int = 0
    history: History = field(default_factory=dict)
    stop_training: bool = False
    checkpoint_dir: str | None = None
    epoch_metrics: list[dict[str, float]] = field(default_factory=list)
    pending: list[Mapping[str, Any]] = field(default_factory=list)

    def check_finite(self) -> None:
        """Fetch the pending step metrics; raise FloatingPointError naming the first step
        whose loss is not finite (and the last good checkpoint, if any)."""
        if not self.pending:
            return
        fetched = jax.device_get(self.pending)
        first_step = self.step - len(fetched)
        for i, metrics in enumerate(fetched):
            loss = float(metrics["loss"])
            if not math.isfinite(loss):
                where = ""
                if self.checkpoint_dir is not None:
                    where = f"; the checkpoints in {self.checkpoint_dir} are from before it"
                raise FloatingPointError(
                    f"fit: the training loss became {loss} at step {first_step + i} "
                    f"(train_state.step; epoch {self.epoch + 1}, batch "
                    f"{self.batch - len(fetched) + i + 1} of {self.steps_per_epoch})"
                    f"{where}; lower the learning rate, clip gradients "
                    f"(jaxnets.optim.wrap(optimizer, clip_norm=...)) or "
                    f"check the inputs"
                )
        self.epoch_metrics.extend({k: float(v) for k, v in m.items()} for m in fetched)
        self.pending = []

    def epoch_means(self) -> dict[str, float]:
        """Per-epoch means of the step metrics (after :meth:`check_finite`)."""
        names = self.epoch_metrics[0] if self.epoch_metrics else {}
        return {
            k: float(np.mean(np.asarray([m[k] for m in self.epoch_metrics], np.float32)))
            for k in names
        }

    def meta(self, logs: Mapping[str, float] | None = None) -> dict[str, Any]:
        """The checkpoint metadata of the current position (``logs`` is this epoch's)."""
        history = {k: list(v) for k, v in self.history.items()}
        if logs is not None:
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch": self.batch,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "steps_per_epoch": self.steps_per_epoch,
            "history": history,
            "epoch_metrics": self.epoch_metrics,
            "logs": dict(logs or {}),
        }


class Callback:
    """Base class: every hook does nothing. Override the ones you need."""

    def on_train_begin(self, run: Run) -> None:
        return None

    def on_step_end(self, run: Run, metrics: Mapping[str, Any]) -> bool | None:
        return None

    def on_epoch_end(self, run: Run, logs: dict[str, float]) -> bool | None:
        return None

    def on_train_end(self, run: Run) -> None:
        return None


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Its state is rebuilt from the history when a run resumes, so a resumed run stops
    where the uninterrupted one would.

    Example:
        >>> stop = EarlyStopping("loss", patience=1)
        >>> run = Run(None, epochs=9, steps_per_epoch=1, seed=0, batch_size=1)
        >>> stop.on_train_begin(run)
        >>> [stop.on_epoch_end(run, {"loss": v}) for v in (1.0, 0.5, 0.7)]
        [False, False, True]
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "min",
    ):
        where = "EarlyStopping"
        if not isinstance(monitor, str):
            raise TypeError(
                f"{where}: monitor must be the name of a history entry such as 'val_loss', "
                f"got {received(monitor)}"
            )
        patience = count(where, "patience", patience)
        min_delta = number(where, "min_delta", min_delta, low=0)
        mode = choice(where, "mode", mode, ("min", "max"))
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.best: float | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def _update(self, value: float) -> None:
        better = self.best is None or (
            value < self.best - self.min_delta
            if self.mode == "min"
            else value > self.best + self.min_delta
        )
        if better:
            self.best, self.wait = value, 0
        else:
            self.wait += 1

    def on_train_begin(self, run: Run) -> None:
        self.best, self.wait, self.stopped_epoch = None, 0, None
        for value in run.history.get(self.monitor, []):
            self._update(value)

    def on_epoch_end(self, run: Run, logs: dict[str, float]) -> bool:
        if self.monitor not in logs:
            raise ValueError(
                f"EarlyStopping: monitor {self.monitor!r} is not in the epoch logs, which hold "
                f"{sorted(logs)}; pass val_data= to fit or monitor one of those"
            )
        self._update(logs[self.monitor])
        if self.wait >= self.patience:
            self.stopped_epoch = run.epoch
            return True
        return False


class LearningRateLogger(Callback):
    """Add ``lr`` to the logs: ``schedule`` evaluated at the last update's step count.

    For optimizers built with ``optax.inject_hyperparams`` (as
    :func:`jaxnets.optim.make_optimizer` does) ``fit`` logs ``lr`` by itself; this
    callback serves plain optax optimizers given a schedule. Put it before the loggers.
    """

    def __init__(self, schedule: Callable[[int], Any], *, name: str = "lr"):
        if not callable(schedule):
            raise TypeError(
                f"LearningRateLogger: schedule must be a function of the step such as "
                f"optax.cosine_decay_schedule(...), got {received(schedule)}"
            )
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"LearningRateLogger: name must be a non-empty str, got {received(name)}"
            )
        self.schedule, self.name = schedule, name

    def on_epoch_end(self, run: Run, logs: dict[str, float]) -> None:
        logs[self.name] = float(self.schedule(max(run.step - 1, 0)))


def _check_path(where: str, path: Any, name: str = "path") -> str:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{where}: {name} must be a file's path (a str), got {received(path)}")
    return os.fspath(path)


def _row(run: Run, logs: Mapping[str, float]) -> dict[str, Any]:
    return {"epoch": run.epoch, "step": run.step, **{k: float(v) for k, v in logs.items()}}


class JSONLinesLogger(Callback):
    """Append one JSON object per epoch to ``path`` (``epoch``, ``step``, the logs).

    On resume, lines of epochs after the resumed position (written by the interrupted
    run) are dropped first, so the file matches an uninterrupted run's.
    """

    def __init__(self, path: str):
        self.path = _check_path("JSONLinesLogger", path)

    def _read(self) -> list[dict]:
        if not os.path.exists(self.path):
            return []
        with open(self.path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def on_train_begin(self, run: Run) -> None:
        kept = [r for r in self._read() if r.get("epoch", 0) <= run.epoch]
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        tmp = f"{self.path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
        os.replace(tmp, self.path)

    def on_epoch_end(self, run: Run, logs: dict[str, float]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(_row(run, logs)) + "\n")


class CSVLogger(Callback):
    """Append one CSV row per epoch to ``path``; the header is written with the first
    row. On resume, rows after the resumed epoch are dropped first."""

    def __init__(self, path: str):
        self.path = _check_path("CSVLogger", path)
        self.fields: list[str] | None = None

    def on_train_begin(self, run: Run) -> None:
        rows: list[dict] = []
        self.fields = None
        if os.path.exists(self.path):
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                self.fields = list(reader.fieldnames or []) or None
                rows = [r for r in reader if int(r["epoch"]) <= run.epoch]
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        tmp = f"{self.path}.tmp-{os.getpid()}"
        with open(tmp, "w", newline="") as f:
            if self.fields:
                writer = csv.DictWriter(f, self.fields)
                writer.writeheader()
                writer.writerows(rows)
        os.replace(tmp, self.path)

    def on_epoch_end(self, run: Run, logs: dict[str, float]) -> None:
        row = _row(run, logs)
        with open(self.path, "a", newline="") as f:
            if self.fields is None:
                self.fields = list(row)
                csv.DictWriter(f, self.fields).writeheader()
            csv.DictWriter(f, self.fields, extrasaction="ignore").writerow(row)


class TensorBoard(Callback):
    """Write every epoch's logs as TensorBoard scalars (``tensorboardX``) to ``logdir``,
    at the epoch number; with ``every_steps``, the training loss every so many steps too.

    On resume, events at or after the resumed epoch are purged (``purge_step``).
    """

    def __init__(self, logdir: str, *, every_steps: int | None = None):
        if every_steps is not None:
            every_steps = count("TensorBoard", "every_steps", every_steps)
        self.logdir, self.every_steps = _check_path("TensorBoard", logdir, "logdir"), every_steps
        self.writer: SummaryWriter | None = None  # open from on_train_begin to on_train_end

    def on_train_begin(self, run: Run) -> None:
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(self.logdir, purge_step=run.epoch + 1 if run.epoch else None)

    def on_step_end(self, run: Run, metrics: Mapping[str, Any]) -> None:
        if self.every_steps and run.step % self.every_steps == 0:
            assert self.writer is not None, "TensorBoard: on_train_begin has not run"
            self.writer.add_scalar("step/loss", float(metrics["loss"]), run.step)

    def on_epoch_end(self, run: Run, logs: dict[str, float]) -> None:
        assert self.writer is not None, "TensorBoard: on_train_begin has not run"
        for name, value in logs.items():
            self.writer.add_scalar(f"epoch/{name}", value, run.epoch)
        self.writer.flush()

    def on_train_end(self, run: Run) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Checkpointing(Callback):
    """Save the whole train state with a :class:`CheckpointManager` at every epoch end
    (and every ``every_steps`` steps inside epochs), after checking that every loss so
    far is finite, so a non-finite loss never reaches a checkpoint. Put it last."""

    def __init__(self, manager: CheckpointManager, *, every_steps: int | None = None):
        if not isinstance(manager, CheckpointManager):
            raise TypeError(
                f"Checkpointing: manager must be a CheckpointManager, got {received(manager)}"
            )
        if every_steps is not None:
            every_steps = count("Checkpointing", "every_steps", every_steps)
        self.manager, self.every_steps = manager, every_steps
        self.last_path: str | None = None

    def on_step_end(self, run: Run, metrics: Mapping[str, Any]) -> None:
        due = self.every_steps and run.step % self.every_steps == 0
        if due and run.batch < run.steps_per_epoch:  # the epoch end saves the last one
            run.check_finite()
            self.last_path = self.manager.save(run.train_state, run.meta())

    def on_epoch_end(self, run: Run, logs: dict[str, float]) -> None:
        monitor = self.manager.monitor
        if monitor is not None and monitor not in logs:  # checked before saving anything
            raise ValueError(
                f"fit: checkpoint_monitor {monitor!r} is not an entry of the epoch's record, "
                f"which holds {sorted(logs)}; monitor one of those"
            )
        self.last_path = self.manager.save(run.train_state, run.meta(logs))
