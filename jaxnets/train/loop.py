"""The training loop: epochs of jitted steps, validation, a progress bar, a history."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NamedTuple

import jax
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxnets import distributed
from jaxnets.core import Layer
from jaxnets.data.dataset import (
    ArrayDataset,
    batches,
    eval_batches,
    prefetch_to_device,
    steps_per_epoch,
)
from jaxnets.optim import learning_rate
from jaxnets.train.callbacks import Callback, Checkpointing, History, Run
from jaxnets.train.checkpoint import CheckpointManager
from jaxnets.train.eval_step import EvalStep, make_eval_step
from jaxnets.train.objective import MetricFn
from jaxnets.train.precision import Policy
from jaxnets.train.precision import policy as get_policy
from jaxnets.train.state import TrainState, create_train_state
from jaxnets.train.step import LossLike, make_train_step


class FitResult(NamedTuple):
    """What :func:`fit` returns: the final training state and the per-epoch history."""

    state: TrainState
    history: History


def evaluate(
    eval_step: Callable,
    train_state: TrainState,
    data: ArrayDataset,
    batch_size: int = 256,
    mesh: distributed.MeshLike | None = None,
) -> dict[str, float]:
    """Mean loss and metrics over every example of ``data`` exactly once.

    With ``mesh`` (the one the eval step was made with) each batch is split over its
    devices: the batch size is rounded up to a multiple of them, the last batch padded
    (an objective's eval step gets the last batch unpadded, so it must divide them).

    Args:
      eval_step: from :func:`jaxnets.make_eval_step`.
      train_state: the state to evaluate.
      data: the examples.
      batch_size: examples per evaluation batch.
      mesh: the mesh or plan the eval step was made with.

    Returns:
      The means by name (``loss`` and the metrics).
    """
    totals: dict[str, float] = {}
    size = batch_size if mesh is None else distributed.eval_batch_size(batch_size, mesh)
    source: Iterator[tuple[np.ndarray, ...]]
    if isinstance(eval_step, EvalStep) and not eval_step.masked:
        source = batches(data, size, shuffle=False, drop_remainder=False)
    else:
        source = eval_batches(data, size)
    if mesh is None:
        stream = prefetch_to_device(source)
    else:
        stream = distributed.prefetch(source, mesh, per_process=False)
    for batch in stream:
        for name, value in eval_step(train_state, batch).items():
            totals[name] = totals.get(name, 0.0) + value
    totals = {k: float(v) for k, v in totals.items()}
    count = totals.pop("count")
    return {name: value / count for name, value in totals.items()}


def build_steps(
    model: Layer | Mapping[str, Layer],
    loss: LossLike,
    optimizer: optax.GradientTransformation | Mapping[str, optax.GradientTransformation],
    *,
    metrics: Mapping[str, MetricFn] | None = None,
    precision: str | Policy | None = None,
    with_eval: bool = True,
    mesh: distributed.MeshLike | None = None,
) -> tuple[Callable, Callable | None]:
    """The jitted train step and (if ``with_eval``) eval step that :func:`fit` uses.

    Args:
      model: the network, or a dict of networks by part.
      loss: a loss name, a per-example loss, an objective or ``(part, objective)`` pairs,
        as in :func:`jaxnets.make_train_step`; pairs cannot have an eval step.
      optimizer: the optax optimizer, or a dict of them by part.
      metrics: per-example ``metric(outputs, labels)`` functions by name (None: the loss's
        default metrics).
      precision: the compute precision, a name or a :class:`~jaxnets.train.precision.Policy`.
      with_eval: also build the eval step (for ``val_data``).
      mesh: the mesh or plan both steps split the batch over (None: one device).

    Returns:
      ``(train_step, eval_step)``; ``eval_step`` is None without ``with_eval``.
    """
    train_step = make_train_step(
        model, loss, optimizer, metrics=metrics, precision=precision, mesh=mesh
    )
    if not with_eval:
        return train_step, None
    if isinstance(loss, Sequence) and not isinstance(loss, str):
        raise ValueError(
            "fit: val_data= is not evaluated for (part, objective) pairs, which have no "
            "single inference-mode loss; evaluate the parts in a callback instead"
        )
    # with a dict of models the loss is an objective (make_train_step checked), which
    # needs no model
    eval_model = model if isinstance(model, Layer) else None
    return train_step, make_eval_step(
        eval_model, loss, metrics=metrics, precision=precision, mesh=mesh
    )


def _resume(manager: CheckpointManager, ts: TrainState, run: Run) -> TrainState:
    """Restore the newest checkpoint into ``ts`` and ``run``; unchanged if there is none."""
    restored = manager.restore(ts)
    if restored is None:
        return ts
    ts, meta = restored
    for name in ("seed", "batch_size", "steps_per_epoch"):
        if meta[name] != getattr(run, name):
            raise ValueError(
                f"fit: cannot resume from {manager.directory}: it was written with "
                f"{name}={meta[name]}, this run has {name}={getattr(run, name)}"
            )
    run.step, run.epoch, run.batch = meta["step"], meta["epoch"], meta["batch"]
    run.history = {k: list(v) for k, v in meta["history"].items()}
    run.epoch_metrics = list(meta["epoch_metrics"])
    return ts


def fit(
    model: Layer | Mapping[str, Layer],
    train_data: ArrayDataset,
    *,
    optimizer: optax.GradientTransformation | Mapping[str, optax.GradientTransformation],
    loss: LossLike = "softmax_cross_entropy",
    epochs: int = 10,
    batch_size: int = 32,
    val_data: ArrayDataset | None = None,
    metrics: Mapping[str, MetricFn] | None = None,
    seed: int = 0,
    train_state: TrainState | None = None,
    progress: bool = True,
    eval_batch_size: int = 256,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir: str | None = None,
    resume: bool = False,
    keep_checkpoints: int = 3,
    checkpoint_monitor: str | None = None,
    checkpoint_mode: str = "min",
    checkpoint_every_steps: int | None = None,
    precision: str | Policy | None = None,
    loss_scale: float | None = None,
    mesh: distributed.MeshLike | None = None,
) -> FitResult:
    """Train ``model`` on ``train_data`` for ``epochs`` epochs and return state and history.

    Each epoch shuffles with ``(seed, epoch)``, runs one jitted step per full batch
    (the step compiles once), then evaluates on ``val_data`` if given. The history holds
    per-epoch means: ``loss``, the metrics, ``val_loss``, ``val_<metric>``, ``lr`` (when
    the optimizer records it, see :func:`jaxnets.optim.make_optimizer`) and
    ``epoch_time``. The same seed gives the same numbers. A non-finite training loss
    stops the run with a FloatingPointError naming the step, before any checkpoint holds
    it.

    Args:
      model: the network, or a dict of networks by part (then pass ``train_state``).
      train_data: the training examples, batched ``(inputs, labels)``.
      optimizer: an optax optimizer, or a dict of them by part; compose clipping and
        gradient accumulation into it first (:func:`jaxnets.optim.wrap`), so that a
        given ``train_state`` and a restored checkpoint match it.
      loss: a loss name, a per-example ``loss(outputs, labels)``, an objective or
        ``(part, objective)`` pairs, as in :func:`jaxnets.make_train_step`.
      epochs: the epochs to train (see ``resume``), >= 0.
      batch_size: examples per training step; the last partial batch of an epoch is
        dropped.
      val_data: examples evaluated at every epoch end (not with ``(part, objective)``
        pairs).
      metrics: per-example ``metric(outputs, labels)`` functions by name (None: accuracy
        for classification losses); not with objectives.
      seed: the seed of the shuffle and, without ``train_state``, of the initialisation
        and the run's key.
      train_state: start from this state instead of a fresh one.
      progress: show a progress bar.
      eval_batch_size: examples per batch of the validation.
      callbacks: :class:`~jaxnets.train.callbacks.Callback` objects, called in order.
      checkpoint_dir: save the whole train state there at every epoch end (None: no
        checkpoints), keeping the newest ones and ``best.jnc``.
      resume: continue from the newest checkpoint in ``checkpoint_dir`` (if any) up to
        ``epochs`` epochs in all; on CPU the result is bitwise that of an
        uninterrupted run. Without ``resume``, a given ``train_state`` trains
        ``epochs`` more epochs.
      keep_checkpoints: how many step checkpoints to keep, at least 1.
      checkpoint_monitor: the entry of the epoch's record that chooses ``best.jnc``
        (None: ``val_loss`` with ``val_data``, else ``loss``).
      checkpoint_mode: ``"min"`` or ``"max"``: whether a smaller or larger monitored
        value is better.
      checkpoint_every_steps: also save every this many steps (None: at epoch ends only).
      precision: ``"float32"`` (default), ``"bfloat16"`` or ``"float16"`` compute with
        float32 parameters (see :mod:`jaxnets.train.precision`).
      loss_scale: overrides float16's default loss scale of 2**15.
      mesh: train on every device of a :func:`jaxnets.distributed.make_mesh` mesh (or a
        :func:`~jaxnets.distributed.fully_sharded` plan): each batch is split over the
        devices, the state replicated (or sharded); ``batch_size`` must be a multiple
        of the devices. With several processes, ``train_data`` and ``batch_size`` are
        this process's (see :func:`jaxnets.distributed.host_shard`).

    Returns:
      A :class:`FitResult`: the last train state and the history, a list of per-epoch
      values by name.

    Example:
        >>> import optax, jaxnets as jn
        >>> data = jn.data.two_spirals(64)
        >>> model = jn.models.mlp((16,), num_classes=2)
        >>> result = jn.fit(model, data, optimizer=optax.adam(1e-2), epochs=2,
        ...                 batch_size=32, progress=False)
        >>> len(result.history["loss"])
        2
    """
    train_data.check()
    if epochs < 0:
        raise ValueError(f"fit: epochs must be >= 0, got {epochs}")
    if resume and checkpoint_dir is None:
        raise ValueError("fit: resume=True needs checkpoint_dir= (where the checkpoints are)")
    if mesh is not None:
        distributed.check_batch_size(batch_size, mesh)
    mixed = get_policy(precision, loss_scale)
    if train_state is not None:
        ts = train_state
    elif isinstance(model, Mapping):
        raise ValueError(
            "fit: with a dict of models, pass train_state= from "
            "jn.create_train_state(models, optimizers, input_specs), which knows each "
            "part's input"
        )
    else:
        input_spec = jax.ShapeDtypeStruct(
            (batch_size, *train_data.inputs.shape[1:]), train_data.inputs.dtype
        )
        ts = create_train_state(model, optimizer, input_spec, seed=seed)
    train_step, eval_step = build_steps(
        model,
        loss,
        optimizer,
        metrics=metrics,
        precision=mixed,
        with_eval=val_data is not None,
        mesh=mesh,
    )
    n_steps = steps_per_epoch(train_data, batch_size)
    if n_steps == 0:
        raise ValueError(
            f"fit: batch_size {batch_size} exceeds the {len(train_data)} training examples"
        )
    run = Run(ts, epochs, n_steps, seed, batch_size, checkpoint_dir=checkpoint_dir)
    run.step = int(ts.step)
    run.epoch = run.step // n_steps
    callbacks = list(callbacks)
    if checkpoint_dir is not None:
        monitor = checkpoint_monitor or ("val_loss" if val_data is not None else "loss")
        manager = CheckpointManager(
            checkpoint_dir, keep=keep_checkpoints, monitor=monitor, mode=checkpoint_mode
        )
        if resume:
            ts = _resume(manager, ts, run)
        callbacks.append(Checkpointing(manager, every_steps=checkpoint_every_steps))
    if not resume:
        run.epochs = run.epoch + epochs
    run.train_state = ts
    remaining = max(0, (run.epochs - run.epoch) * n_steps - run.batch)
    bar = tqdm(total=remaining, disable=not progress, dynamic_ncols=True, unit="step")
    try:
        for cb in callbacks:
            cb.on_train_begin(run)
        while run.epoch < run.epochs and not run.stop_training:
            start = time.perf_counter()
            bar.set_description(f"epoch {run.epoch + 1}/{run.epochs}")
            data = batches(train_data, batch_size, seed=seed, epoch=run.epoch, start=run.batch)
            stream = prefetch_to_device(data) if mesh is None else distributed.prefetch(data, mesh)
            for batch in stream:
                ts, m = train_step(ts, batch)
                run.train_state, run.step, run.batch = ts, run.step + 1, run.batch + 1
                run.pending.append(m)
                bar.update(1)
                stops = [cb.on_step_end(run, m) for cb in callbacks]
                if any(stops):
                    run.stop_training = True
                    break
            run.check_finite()
            if run.batch < n_steps:  # a callback stopped mid-epoch
                break
            record = run.epoch_means()
            run.epoch, run.batch, run.epoch_metrics = run.epoch + 1, 0, []
            if eval_step is not None:
                assert val_data is not None  # an eval step is built only with val_data
                val = evaluate(eval_step, ts, val_data, eval_batch_size, mesh)
                record.update({f"val_{k}": v for k, v in val.items()})
            lr = learning_rate(ts.opt_state)
            if lr is not None:
                record["lr"] = float(lr)
            record["epoch_time"] = time.perf_counter() - start
            stops = [cb.on_epoch_end(run, record) for cb in callbacks]
            run.stop_training = run.stop_training or any(stops)
            for k, v in record.items():
                run.history.setdefault(k, []).append(v)
            bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k != "epoch_time"})
    finally:
        bar.close()
        for cb in callbacks:
            cb.on_train_end(run)
    return FitResult(ts, run.history)
