"""The training loop: epochs of jitted steps, validation, a progress bar, a history."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxnets.core import Layer
from jaxnets.data.dataset import (
    ArrayDataset,
    batches,
    eval_batches,
    prefetch_to_device,
    steps_per_epoch,
)
from jaxnets.train.state import TrainState, create_train_state
from jaxnets.train.step import MetricFn, make_eval_step, make_train_step

History = dict[str, list[float]]


class FitResult(NamedTuple):
    """What :func:`fit` returns: the final training state and the per-epoch history."""

    state: TrainState
    history: History


def evaluate(
    eval_step: Callable,
    train_state: TrainState,
    data: ArrayDataset,
    batch_size: int = 256,
) -> dict[str, float]:
    """Mean loss and metrics over every example of ``data`` exactly once."""
    totals: dict[str, float] = {}
    for batch in prefetch_to_device(eval_batches(data, batch_size)):
        for name, value in eval_step(train_state, batch).items():
            totals[name] = totals.get(name, 0.0) + value
    totals = {k: float(v) for k, v in totals.items()}
    count = totals.pop("count")
    return {name: value / count for name, value in totals.items()}


def _check_finite(values: np.ndarray, first_step: int) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        step = first_step + int(bad[0])
        raise FloatingPointError(
            f"fit: the training loss became {values[bad[0]]} at step {step}; lower the "
            f"learning rate, clip gradients (optax.clip_by_global_norm) or check the inputs"
        )


def fit(
    model: Layer,
    train_data: ArrayDataset,
    *,
    optimizer: optax.GradientTransformation,
    loss: str | Callable = "softmax_cross_entropy",
    epochs: int = 10,
    batch_size: int = 32,
    val_data: ArrayDataset | None = None,
    metrics: Mapping[str, MetricFn] | None = None,
    seed: int = 0,
    train_state: TrainState | None = None,
    progress: bool = True,
    eval_batch_size: int = 256,
) -> FitResult:
    """Train ``model`` on ``train_data`` for ``epochs`` epochs and return state and history.

    Each epoch shuffles with ``(seed, epoch)``, runs one jitted step per full batch
    (the step compiles once), then evaluates on ``val_data`` if given. The history holds
    per-epoch means: ``loss``, the metrics, ``val_loss``, ``val_<metric>`` and
    ``epoch_time``. The same seed gives the same numbers. A non-finite training loss
    stops the run with a FloatingPointError naming the step.

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
    input_spec = jax.ShapeDtypeStruct(
        (batch_size,) + train_data.inputs.shape[1:], train_data.inputs.dtype
    )
    ts = train_state or create_train_state(model, optimizer, input_spec, seed=seed)
    train_step = make_train_step(model, loss, optimizer, metrics=metrics)
    eval_step = make_eval_step(model, loss, metrics=metrics) if val_data is not None else None
    n_steps = steps_per_epoch(train_data, batch_size)
    if n_steps == 0:
        raise ValueError(
            f"fit: batch_size {batch_size} exceeds the {len(train_data)} training examples"
        )
    history: History = {}
    first_epoch = int(ts.step) // n_steps
    last_epoch = first_epoch + epochs
    bar = tqdm(total=epochs * n_steps, disable=not progress, dynamic_ncols=True, unit="step")
    for epoch in range(first_epoch, last_epoch):
        start = time.perf_counter()
        bar.set_description(f"epoch {epoch + 1}/{last_epoch}")
        first_step = int(ts.step)
        step_metrics = []
        for batch in prefetch_to_device(batches(train_data, batch_size, seed=seed, epoch=epoch)):
            ts, m = train_step(ts, batch)
            step_metrics.append(m)
            bar.update(1)
        epoch_means = jax.device_get(jax.tree.map(lambda *v: np.stack(v), *step_metrics))
        _check_finite(np.asarray(epoch_means["loss"]), first_step)
        record = {k: float(np.mean(v)) for k, v in epoch_means.items()}
        if eval_step is not None:
            val = evaluate(eval_step, ts, val_data, eval_batch_size)
            record.update({f"val_{k}": v for k, v in val.items()})
        record["epoch_time"] = time.perf_counter() - start
        for k, v in record.items():
            history.setdefault(k, []).append(v)
        bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k != "epoch_time"})
    bar.close()
    return FitResult(ts, history)
