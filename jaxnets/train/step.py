"""Jit-compiled train and eval steps built from a model, a loss and an optax optimizer."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from jaxnets import losses
from jaxnets.core import Layer
from jaxnets.train.state import TrainState

MetricFn = Callable[[jax.Array, jax.Array], jax.Array]

_CLASSIFICATION_LOSSES = {
    losses.softmax_cross_entropy,
    losses.sigmoid_binary_cross_entropy,
    losses.hinge,
}


def default_metrics(loss_fn: Callable) -> dict[str, MetricFn]:
    """Accuracy for classification losses, nothing more otherwise."""
    return {"accuracy": losses.correct} if loss_fn in _CLASSIFICATION_LOSSES else {}


def make_train_step(
    model: Layer,
    loss: str | Callable,
    optimizer: optax.GradientTransformation,
    *,
    metrics: Mapping[str, MetricFn] | None = None,
    donate: bool = True,
) -> Callable[[TrainState, tuple], tuple[TrainState, dict]]:
    """A jitted ``step(train_state, (inputs, labels)) -> (train_state, metrics)``.

    The loss is averaged over the batch and differentiated with ``jax.grad``; the
    optimizer's update is applied; BatchNorm-like state is carried. Metrics are
    per-example functions, averaged. The input train state is donated (its buffers are
    reused), so keep only the returned one.

    Example:
        >>> import optax, numpy as np, jaxnets as jn
        >>> model = jn.serial(jn.Dense(8), jn.Relu(), jn.Dense(2))
        >>> opt = optax.adam(1e-2)
        >>> ts = jn.create_train_state(model, opt, (4, 3))
        >>> step = jn.make_train_step(model, "softmax_cross_entropy", opt)
        >>> ts, m = step(ts, (np.ones((4, 3), np.float32), np.zeros(4, np.int32)))
        >>> sorted(m), int(ts.step)
        (['accuracy', 'loss'], 1)
    """
    loss_fn = losses.get(loss)
    metric_fns = dict(default_metrics(loss_fn) if metrics is None else metrics)

    def step(ts: TrainState, batch):
        inputs, labels = batch
        key = jax.random.fold_in(ts.key, ts.step)

        def objective(params):
            outputs, new_state = model.apply(params, ts.state, inputs, key=key, train=True)
            return jnp.mean(loss_fn(outputs, labels)), (outputs, new_state)

        (value, (outputs, new_state)), grads = jax.value_and_grad(objective, has_aux=True)(
            ts.params
        )
        updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
        params = optax.apply_updates(ts.params, updates)
        out = {"loss": value}
        for name, fn in metric_fns.items():
            out[name] = jnp.mean(fn(outputs, labels))
        return TrainState(ts.step + 1, params, new_state, opt_state, ts.key), out

    return jax.jit(step, donate_argnums=(0,) if donate else ())


def make_eval_step(
    model: Layer,
    loss: str | Callable,
    *,
    metrics: Mapping[str, MetricFn] | None = None,
) -> Callable[[TrainState, tuple], dict]:
    """A jitted ``eval_step(train_state, (inputs, labels, mask)) -> sums``.

    Returns masked sums ``{"loss": ..., <metric>: ..., "count": ...}`` in inference
    mode, so padded examples count zero times and real ones exactly once.
    """
    loss_fn = losses.get(loss)
    metric_fns = dict(default_metrics(loss_fn) if metrics is None else metrics)

    def eval_step(ts: TrainState, batch):
        inputs, labels, mask = batch
        outputs, _ = model.apply(ts.params, ts.state, inputs, key=None, train=False)
        sums = {"loss": jnp.sum(loss_fn(outputs, labels) * mask)}
        for name, fn in metric_fns.items():
            sums[name] = jnp.sum(fn(outputs, labels) * mask)
        sums["count"] = jnp.sum(mask)
        return sums

    return jax.jit(eval_step)


def make_predict(model: Layer) -> Callable:
    """A jitted ``predict(params, state, inputs) -> outputs`` in inference mode."""

    def predict(params, state, inputs):
        return model.apply(params, state, inputs, key=None, train=False)[0]

    return jax.jit(predict)
