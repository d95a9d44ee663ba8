"""The training loop: epochs of jitted steps, validation, a progress bar, a history."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, cast

import jax
import optax

from jaxnets import distributed, losses
from jaxnets.core import Layer
from jaxnets.data.dataset import ArrayDataset, prefetch_to_device
from jaxnets.data.sources import Source, as_source
from jaxnets.optim import learning_rate
from jaxnets.train.callbacks import Callback, Checkpointing, EarlyStopping, History, Run
from jaxnets.train.checkpoint import CheckpointError, CheckpointManager, restore_checkpoint
from jaxnets.train.eval_step import evaluate, make_eval_step
from jaxnets.train.fit_checks import (
    HOOKS,
    check_finite_inputs,
    check_fit_arguments,
    check_labels,
    check_monitor,
    history_keys,
    model_outputs,
)
from jaxnets.train.objective import MetricFn, default_metrics, is_objective
from jaxnets.train.precision import Policy
from jaxnets.train.precision import policy as get_policy
from jaxnets.train.progress import Progress
from jaxnets.train.state import TrainState, create_train_state
from jaxnets.train.step import LossLike, make_train_step

# Steps dispatched ahead of the one the device is running. JAX dispatches asynchronously,
# so without a bound a host that reads batches faster than the device trains on them
# queues every batch of the epoch in memory; two ahead keep the device busy.
IN_FLIGHT = 2


class FitResult(NamedTuple):
    """What :func:`fit` returns: the final training state and the per-epoch history."""

    state: TrainState
    history: History


def build_steps(
    model: Layer | Mapping[str, Layer],
    loss: LossLike,
    optimizer: optax.GradientTransformation | Mapping[str, optax.GradientTransformation],
    *,
    metrics: Mapping[str, MetricFn] | None = None,
    precision: str | Policy | None = None,
    with_eval: bool = True,
    mesh: distributed.MeshLike | None = None,
    where: str = "build_steps",
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
      where: the function named in the errors (``fit`` passes its name).

    Returns:
      ``(train_step, eval_step)``; ``eval_step`` is None without ``with_eval``.
    """
    train_step = make_train_step(
        model, loss, optimizer, metrics=metrics, precision=precision, mesh=mesh
    )
    if not with_eval:
        return train_step, None
    if isinstance(loss, Sequence) and not isinstance(loss, str):
        what = "val_data=" if where == "fit" else "with_eval=True"
        raise ValueError(
            f"{where}: {what} is not evaluated for (part, objective) pairs, which have no "
            f"single inference-mode loss; evaluate the parts in a callback instead"
        )
    # with a dict of models the loss is an objective (make_train_step checked), which
    # needs no model
    eval_model = model if isinstance(model, Layer) else None
    return train_step, make_eval_step(
        eval_model, loss, metrics=metrics, precision=precision, mesh=mesh
    )


def _resume(manager: CheckpointManager, ts: TrainState, run: Run) -> TrainState:
    """Restore the newest checkpoint into ``ts`` and ``run``; unchanged if there is none."""
    path, damaged = manager.scan()
    if path is None and damaged:
        raise CheckpointError(
            f"fit: cannot resume from {manager.directory}: every checkpoint there is "
            f"damaged ({'; '.join(damaged)}); move them away to start afresh"
        )
    for reason in damaged:
        warnings.warn(f"skipping a damaged checkpoint: {reason}", stacklevel=3)
    if path is None:
        return ts
    ts, meta = restore_checkpoint(path, ts)
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
    train_data: ArrayDataset | Iterable[Any],
    *,
    optimizer: optax.GradientTransformation | Mapping[str, optax.GradientTransformation],
    loss: LossLike = "softmax_cross_entropy",
    epochs: int = 10,
    batch_size: int | None = None,
    steps_per_epoch: int | None = None,
    val_data: ArrayDataset | Iterable[Any] | None = None,
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

    Before anything is compiled or written, the arguments are checked (types and ranges,
    the callbacks' protocol, that a monitored entry is one the history will hold) and so
    is the data, on the host: as many labels as inputs, no empty set, labels that fit the
    model's outputs and a built-in loss (class ids in ``[0, classes)``, binary targets,
    shapes; in ``train_data`` and ``val_data``), finite ``val_data`` inputs. A
    non-finite training input shows as the FloatingPointError above.

    Args:
      model: the network, or a dict of networks by part (then pass ``train_state``).
      train_data: the training examples: an ``ArrayDataset`` (batched, shuffled by
        ``(seed, epoch)``), or a re-iterable of ``(inputs, labels)`` batches read in
        its own order each epoch: a list, a grain data set or loader
        (:mod:`jaxnets.data.sources`). Inputs and labels may be pytrees
        (``(x, lengths)``); shapes and dtypes are checked on the first batch.
      optimizer: an optax optimizer, or a dict of them by part; compose clipping and
        gradient accumulation into it first (:func:`jaxnets.optim.wrap`), so that a
        given ``train_state`` and a restored checkpoint match it.
      loss: a loss name, a per-example ``loss(outputs, labels)``, an objective or
        ``(part, objective)`` pairs, as in :func:`jaxnets.make_train_step`.
      epochs: the epochs to train (see ``resume``), >= 0.
      batch_size: examples per training step of an ``ArrayDataset`` (None: 32); the
        last partial batch of an epoch is dropped. With batches: None, or their size.
      steps_per_epoch: the steps of an epoch (None: every full batch of an
        ``ArrayDataset``, or ``len(train_data)``; needed for batches without a length).
      val_data: examples evaluated at every epoch end, an ``ArrayDataset`` or batches
        as ``train_data`` (every example once; not with ``(part, objective)`` pairs).
      metrics: per-example ``metric(outputs, labels)`` functions by name (None: accuracy
        for classification losses); not with objectives.
      seed: the seed of the shuffle and, without ``train_state``, of the initialisation
        and the run's key.
      train_state: start from this state instead of a fresh one. Training starts at
        epoch ``train_state.step // steps_per_epoch``, at that epoch's first batch: a
        state stopped mid-epoch trains that epoch's first ``step % steps_per_epoch``
        batches again (its step counter keeps counting). To continue exactly where a
        run stopped, use ``checkpoint_dir`` with ``resume=True``.
      progress: show the progress: a bar redrawn in place on a terminal, one line per
        epoch otherwise (logs, CI); the rate and time left leave out compilation and
        the evaluations (:mod:`jaxnets.train.progress`).
      eval_batch_size: examples per batch of the validation of an ``ArrayDataset``.
      callbacks: :class:`~jaxnets.train.callbacks.Callback` objects, called in order.
      checkpoint_dir: save the whole train state there at every epoch end (None: no
        checkpoints), keeping the newest ones and ``best.jnc``. A folder that already
        holds a run's checkpoints is refused unless ``resume``, so a run never replaces
        another's.
      resume: continue from the newest checkpoint in ``checkpoint_dir`` (if any) up to
        ``epochs`` epochs in all; on CPU the result is bitwise that of an
        uninterrupted run. If every checkpoint there is damaged, a CheckpointError
        (not a fresh start). Without ``resume``, a given ``train_state`` trains
        ``epochs`` more epochs.
      keep_checkpoints: how many step checkpoints to keep, at least 1.
      checkpoint_monitor: the entry of the epoch's record that chooses ``best.jnc``
        (None: ``val_loss`` with ``val_data``, else ``loss``). An entry the history will
        not hold is a ValueError listing those it will: before training, or with an
        objective or custom callbacks (whose entries are known only then) at the first
        epoch end, before anything is saved.
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

    Raises:
      TypeError: an argument of the wrong type (``optimizer="adam"``, ``epochs=2.5``).
      ValueError: an argument out of range, data that does not fit the model or loss,
        a monitor the history will not hold.
      CheckpointError: ``resume=True`` and every checkpoint is damaged.
      FloatingPointError: a non-finite training loss.

    Example:
        >>> import optax, jaxnets as jn
        >>> data = jn.data.two_spirals(64)
        >>> model = jn.models.mlp((16,), num_classes=2)
        >>> result = jn.fit(model, data, optimizer=optax.adam(1e-2), epochs=2,
        ...                 batch_size=32, progress=False)
        >>> len(result.history["loss"])
        2
    """
    callbacks = check_fit_arguments(
        model=model,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        seed=seed,
        train_state=train_state,
        progress=progress,
        resume=resume,
        callbacks=callbacks,
        metrics=metrics,
        checkpoint_dir=checkpoint_dir,
        keep_checkpoints=keep_checkpoints,
        checkpoint_monitor=checkpoint_monitor,
        checkpoint_mode=checkpoint_mode,
        checkpoint_every_steps=checkpoint_every_steps,
    )
    train = as_source(
        train_data,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        where="fit",
        name="train_data",
    )
    val: Source | None = None
    if val_data is not None:
        size = eval_batch_size if isinstance(val_data, ArrayDataset) else None
        val = as_source(val_data, batch_size=size, where="fit", name="val_data")
        check_finite_inputs("fit", "val_data", val.inputs_to_check())
    if mesh is not None:
        distributed.check_batch_size(train.batch_size, mesh)
    mixed = get_policy(precision, loss_scale, where="fit")
    pairs = isinstance(loss, Sequence) and not isinstance(loss, str)
    loss_fn = None if pairs or is_objective(loss) else losses.get(cast(Any, loss), where="fit")
    if train_state is not None:
        ts = train_state
    elif isinstance(model, Mapping):
        raise ValueError(
            "fit: with a dict of models, pass train_state= from "
            "jn.create_train_state(models, optimizers, input_specs), which knows each "
            "part's input"
        )
    else:
        ts = create_train_state(model, optimizer, train.input_spec(), seed=seed)
    keys = None
    if loss_fn is not None and isinstance(model, Layer):
        outputs = model_outputs(model, ts.params, ts.state, train.input_spec())
        for split in (train, val):
            if split is not None:
                check_labels("fit", split.name, split.labels_to_check(), outputs, loss_fn)
        names = default_metrics(loss_fn) if metrics is None else metrics
        keys = history_keys(
            names,
            with_val=val_data is not None,
            records_lr=learning_rate(ts.opt_state) is not None,
            callbacks=callbacks,
        )
    train_step, eval_step = build_steps(
        model,
        loss,
        optimizer,
        metrics=metrics,
        precision=mixed,
        with_eval=val_data is not None,
        mesh=mesh,
        where="fit",
    )
    n_steps = train.steps_per_epoch
    if n_steps == 0:
        raise ValueError(
            f"fit: batch_size {train.batch_size} exceeds the {len(cast(Any, train_data))} "
            f"training examples"
        )
    monitor = checkpoint_monitor or ("val_loss" if val_data is not None else "loss")
    if keys is not None:
        if checkpoint_dir is not None:
            check_monitor("fit", "checkpoint_monitor", monitor, keys)
        for i, cb in enumerate(callbacks):
            if isinstance(cb, EarlyStopping):
                check_monitor("fit", f"callbacks[{i}] (EarlyStopping) monitor", cb.monitor, keys)
    run = Run(ts, epochs, n_steps, seed, train.batch_size, checkpoint_dir=checkpoint_dir)
    run.step = int(ts.step)
    run.epoch = run.step // n_steps
    if checkpoint_dir is not None:
        manager = CheckpointManager(
            checkpoint_dir, keep=keep_checkpoints, monitor=monitor, mode=checkpoint_mode
        )
        if resume:
            ts = _resume(manager, ts, run)
        elif manager.steps():
            raise ValueError(
                f"fit: checkpoint_dir {manager.directory} already holds the checkpoints of "
                f"a run (steps {manager.steps()}); pass resume=True to continue it, or "
                f"another checkpoint_dir (a fresh run would replace them)"
            )
        callbacks.append(Checkpointing(manager, every_steps=checkpoint_every_steps))
    if not resume:
        run.epochs = run.epoch + epochs
    run.train_state = ts
    remaining = max(0, (run.epochs - run.epoch) * n_steps - run.batch)
    bar = Progress(remaining, enabled=progress)
    hooks = [[getattr(cb, h, None) for h in HOOKS] for cb in callbacks]
    try:
        for begin, *_ in hooks:
            if begin is not None:
                begin(run)
        while run.epoch < run.epochs and not run.stop_training:
            start = time.perf_counter()
            bar.start_epoch(run.epoch + 1, run.epochs, n_steps - run.batch)
            data = train.train_batches(seed, run.epoch, run.batch)
            stream = prefetch_to_device(data) if mesh is None else distributed.prefetch(data, mesh)
            for batch in stream:
                ts, m = train_step(ts, batch)
                run.train_state, run.step, run.batch = ts, run.step + 1, run.batch + 1
                run.pending.append(m)
                if len(run.pending) > IN_FLIGHT:  # hold the host to IN_FLIGHT steps ahead
                    jax.block_until_ready(run.pending[-IN_FLIGHT - 1])
                bar.step()
                stops = [step_end(run, m) for _, step_end, _, _ in hooks if step_end]
                if any(stops):
                    run.stop_training = True
                    break
            run.check_finite()
            if run.batch < n_steps:  # a callback stopped mid-epoch
                break
            record = run.epoch_means()
            run.epoch, run.batch, run.epoch_metrics = run.epoch + 1, 0, []
            if eval_step is not None:
                assert val is not None  # an eval step is built only with val_data
                scores = evaluate(eval_step, ts, val, eval_batch_size, mesh)
                record.update({f"val_{k}": v for k, v in scores.items()})
            lr = learning_rate(ts.opt_state)
            if lr is not None:
                record["lr"] = float(lr)
            record["epoch_time"] = time.perf_counter() - start
            stops = [epoch_end(run, record) for _, _, epoch_end, _ in hooks if epoch_end]
            run.stop_training = run.stop_training or any(stops)
            for k, v in record.items():
                run.history.setdefault(k, []).append(v)
            bar.end_epoch(record)
    finally:
        bar.close()
        for *_, end in hooks:
            if end is not None:
                end(run)
    return FitResult(ts, run.history)
