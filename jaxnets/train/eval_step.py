"""Jitted evaluation and prediction: sums over batches, on one device or a mesh."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import distributed, losses
from jaxnets._impl import xla_options
from jaxnets.core import Layer
from jaxnets.core.arguments import count, received
from jaxnets.data.dataset import ArrayDataset, prefetch_to_device
from jaxnets.data.sources import Source, as_source
from jaxnets.train.objective import (
    MetricFn,
    check_metrics,
    check_output,
    default_metrics,
    is_objective,
)
from jaxnets.train.precision import Policy
from jaxnets.train.precision import policy as get_policy
from jaxnets.train.state import TrainState


class EvalStep:
    """A jitted ``eval_step(train_state, batch) -> sums`` on one device or a mesh.

    ``masked`` steps take ``(inputs, labels, mask)`` batches (the last padded with mask 0,
    as :func:`jaxnets.data.eval_batches` yields); with a mesh a batch that does not
    divide the devices is padded the same way. Objective steps take whole batches of any
    pytree and weight each batch's means by its size.

    Attributes:
        masked: whether batches carry a mask.
        compiler_options: the XLA options it compiled with (None before the first call).
    """

    def __init__(
        self,
        fn: Callable,
        *,
        masked: bool,
        placement: distributed.DataParallel | None = None,
        compiler_options: Mapping[str, Any] | None = None,
    ):
        self._fn = fn
        self.masked = masked
        self._placement = placement
        self._options = compiler_options
        self.compiler_options: dict[str, Any] | None = None
        self._jitted: dict[Any, jax.stages.Wrapped] = {}  # by the train state's structure

    def _compiled(self, ts: TrainState, batch) -> tuple[jax.stages.Wrapped, TrainState]:
        treedef = jax.tree.structure(ts)
        jitted = self._jitted.get(treedef)
        if jitted is None:
            placement: dict[str, Any] = {}
            if self._placement is not None:
                plan = self._placement
                placement = {
                    "in_shardings": (distributed.state_shardings(ts, plan), plan.batch_sharding()),
                    "out_shardings": plan.replicated(),
                }
            options = self._options
            if options is None:
                options = xla_options.compiler_options(self._fn, ts, batch)
            self.compiler_options = dict(options)
            fn = xla_options.on_platform_of(self._fn, ts, batch)
            jitted = jax.jit(fn, compiler_options=dict(options) or None, **placement)
            self._jitted[treedef] = jitted
        if self._placement is not None:  # a no-op for arrays already placed
            ts = distributed.place_state(ts, self._placement)
        return jitted, ts

    def __call__(self, ts: TrainState, batch) -> dict:
        if self._placement is not None:
            plan = self._placement
            if self.masked:
                if not isinstance(batch, tuple) or len(batch) != 3:
                    raise ValueError(
                        "eval step: expected a batch (inputs, labels, mask) as "
                        "jaxnets.data.eval_batches yields"
                    )
                if np.shape(batch[0])[0] % plan.size:
                    batch = distributed.pad_batch(jax.device_get(batch), plan.size)
            batch = distributed.shard_batch(batch, plan, per_process=False)
        jitted, ts = self._compiled(ts, batch)
        return jitted(ts, batch)

    def lower(self, ts: TrainState, batch) -> jax.stages.Lowered:
        jitted, ts = self._compiled(ts, batch)
        return jitted.lower(ts, batch)


def make_eval_step(
    model: Layer | None,
    loss: str | Callable,
    *,
    metrics: Mapping[str, MetricFn] | None = None,
    precision: str | Policy | None = None,
    mesh: distributed.MeshLike | None = None,
    compiler_options: Mapping[str, Any] | None = None,
) -> EvalStep:
    """A jitted ``eval_step(train_state, batch) -> sums`` in inference mode.

    With a per-example loss the batch is ``(inputs, labels, mask)`` and the sums are
    masked, ``{"loss": ..., <metric>: ..., "count": ...}``, so padded examples count zero
    times and real ones exactly once. With an objective (see
    :func:`jaxnets.make_train_step`) the batch is any pytree whose leaves share a leading
    example axis, and the sums are the objective's loss and metrics times the batch size.

    Args:
      model: the network (None with an objective).
      loss: a loss name, a per-example ``loss(outputs, labels)`` or an objective.
      metrics: per-example metrics (per-example losses only).
      precision: a name or :class:`~jaxnets.train.precision.Policy` (inputs cast).
      mesh: a mesh or plan, as in :func:`jaxnets.make_train_step`; a batch is split over
        its devices (a masked one padded to a multiple of them).
      compiler_options: as in :func:`jaxnets.make_train_step`.

    Returns:
      An :class:`EvalStep`.

    Example:
        >>> import numpy as np, optax, jaxnets as jn
        >>> model = jn.Dense(2)
        >>> ts = jn.create_train_state(model, optax.sgd(0.1), (4, 3))
        >>> eval_step = jn.make_eval_step(model, "softmax_cross_entropy")
        >>> sums = eval_step(ts, (np.ones((4, 3), np.float32), np.zeros(4, np.int32), np.ones(4)))
        >>> sorted(sums), float(sums["count"])
        (['accuracy', 'count', 'loss'], 4.0)
    """
    where = "make_eval_step"
    placement = None if mesh is None else distributed.as_plan(mesh)
    if is_objective(loss):
        if metrics is not None:
            raise ValueError("make_eval_step: an objective returns its own metrics; got metrics=")
        return EvalStep(
            _objective_eval(loss),
            masked=False,
            placement=placement,
            compiler_options=compiler_options,
        )
    if model is None:
        raise ValueError("make_eval_step: a per-example loss needs a model; got model=None")
    if not isinstance(model, Layer):
        raise TypeError(f"{where}: model must be a jaxnets Layer, got {received(model)}")
    loss_fn = losses.get(loss, where=where)
    check_metrics(where, metrics)
    metric_fns = dict(default_metrics(loss_fn) if metrics is None else metrics)
    mixed = get_policy(precision, where=where)

    def eval_step(ts: TrainState, batch):
        inputs, labels, mask = batch
        inputs = mixed.cast_inputs(inputs)
        outputs, _ = model.apply(ts.params, ts.state, inputs, key=None, train=False)
        sums = {"loss": jnp.sum(loss_fn(outputs, labels) * mask)}
        for name, fn in metric_fns.items():
            sums[name] = jnp.sum(fn(outputs, labels) * mask)
        sums["count"] = jnp.sum(mask)
        return sums

    return EvalStep(eval_step, masked=True, placement=placement, compiler_options=compiler_options)


def _objective_eval(objective: Callable) -> Callable:
    name = getattr(objective, "__name__", type(objective).__name__)

    def eval_step(ts: TrainState, batch):
        out = objective(ts.params, ts.state, batch, key=None, train=False)
        loss, _, metrics = check_output(name, out, ts.state)
        count = jnp.float32(np.shape(jax.tree.leaves(batch)[0])[0])
        sums = {"loss": loss * count}
        sums.update((k, v * count) for k, v in metrics.items() if k != "loss")
        sums["count"] = count
        return sums

    return eval_step


def make_predict(
    model: Layer,
    *,
    precision: str | Policy | None = None,
    compiler_options: Mapping[str, Any] | None = None,
) -> Callable:
    """A jitted ``predict(params, state, inputs) -> outputs`` in inference mode.

    Args:
      model: the network.
      precision: a name or :class:`~jaxnets.train.precision.Policy` (inputs cast).
      compiler_options: as in :func:`jaxnets.make_train_step`.

    Returns:
      The jitted function.

    Example:
        >>> import jax, numpy as np, jaxnets as jn
        >>> model = jn.Dense(2)
        >>> _, params, state = model.init(jax.random.key(0), (1, 3))
        >>> jn.make_predict(model)(params, state, np.ones((5, 3), np.float32)).shape
        (5, 2)
    """
    mixed = get_policy(precision, where="make_predict")

    def predict(params, state, inputs):
        return model.apply(params, state, mixed.cast_inputs(inputs), key=None, train=False)[0]

    return xla_options.TunedJit(predict, compiler_options)


def evaluate(
    eval_step: Callable,
    train_state: TrainState,
    data: ArrayDataset | Iterable[Any] | Source,
    batch_size: int = 256,
    mesh: distributed.MeshLike | None = None,
) -> dict[str, float]:
    """Mean loss and metrics over every example of ``data`` exactly once.

    An ``ArrayDataset`` is read ``batch_size`` examples at a time; a re-iterable of
    batches (see :mod:`jaxnets.data.sources`) in its own batches, the last padded to the
    first one's size. With ``mesh`` (the one the eval step was made with) each batch is
    split over its devices: an array batch size is rounded up to a multiple of them, the
    last batch padded (an objective's eval step gets the last batch unpadded, so it must
    divide them).

    Args:
      eval_step: from :func:`jaxnets.make_eval_step`.
      train_state: the state to evaluate.
      data: the examples: an ``ArrayDataset`` or a re-iterable of ``(inputs, labels)``
        batches.
      batch_size: examples per evaluation batch of an ``ArrayDataset``.
      mesh: the mesh or plan the eval step was made with.

    Returns:
      The means by name (``loss`` and the metrics).
    """
    count("evaluate", "batch_size", batch_size)
    size = batch_size if mesh is None else distributed.eval_batch_size(batch_size, mesh)
    if not isinstance(data, Source):
        data = as_source(
            data,
            batch_size=size if isinstance(data, ArrayDataset) else None,
            where="evaluate",
            name="data",
        )
    masked = not (isinstance(eval_step, EvalStep) and not eval_step.masked)
    source: Iterator[tuple[np.ndarray, ...]] = data.eval_batches(size, masked=masked)
    if mesh is None:
        stream = prefetch_to_device(source)
    else:
        stream = distributed.prefetch(source, mesh, per_process=False)
    totals: dict[str, float] = {}
    for batch in stream:
        for name, value in eval_step(train_state, batch).items():
            totals[name] = totals.get(name, 0.0) + value
    totals = {k: float(v) for k, v in totals.items()}
    examples = totals.pop("count")
    return {name: value / examples for name, value in totals.items()}
