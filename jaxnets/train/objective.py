"""Objectives: what a train step minimises, over a whole batch of any pytree.

An objective is a function

    objective(params, state, batch, *, key, train) -> (loss, (new_state, metrics))

with ``loss`` a scalar, ``new_state`` of the structure of ``state`` and ``metrics`` a dict
of scalars. The supervised loss of a model is one objective (:func:`supervised`); a model
with an auxiliary loss, a GAN's two players or any research objective are others. A train
step runs one :class:`Update` per optimised part, in order, inside one compiled function.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeGuard

import jax
import jax.numpy as jnp
import optax

from jaxnets import losses
from jaxnets.core import Layer
from jaxnets.core.arguments import flag, received
from jaxnets.train.precision import Policy

MetricFn = Callable[[jax.Array, jax.Array], jax.Array]


class Objective(Protocol):
    """``objective(params, state, batch, *, key, train) -> (loss, (new_state, metrics))``."""

    def __call__(
        self, params: Any, state: Any, batch: Any, *, key: jax.Array | None, train: bool
    ) -> tuple[jax.Array, tuple[Any, dict[str, jax.Array]]]: ...


_CLASSIFICATION_LOSSES = {
    losses.softmax_cross_entropy,
    losses.sigmoid_binary_cross_entropy,
    losses.hinge,
}


def default_metrics(loss_fn: Callable) -> dict[str, MetricFn]:
    """Accuracy for classification losses, nothing more otherwise.

    Args:
      loss_fn: a per-example loss function, as :func:`jaxnets.losses.get` returns it.

    Returns:
      ``{"accuracy": jaxnets.losses.correct}`` for softmax cross-entropy, sigmoid binary
      cross-entropy and hinge; ``{}`` for any other loss.
    """
    return {"accuracy": losses.correct} if loss_fn in _CLASSIFICATION_LOSSES else {}


def supervised(
    model: Layer,
    loss: str | Callable = "softmax_cross_entropy",
    *,
    metrics: Mapping[str, MetricFn] | None = None,
    precision: Policy | None = None,
) -> Objective:
    """The objective of supervised learning on batches ``(inputs, labels)``.

    The mean over the batch of the per-example ``loss(model(inputs), labels)``; metrics
    are per-example functions, averaged (accuracy by default for classification losses).
    ``precision`` casts the inputs to its compute dtype.

    Args:
      model: the network.
      loss: a name from :mod:`jaxnets.losses` or a per-example ``loss(outputs, labels)``.
      metrics: per-example ``metric(outputs, labels)`` functions by name.
      precision: a :class:`~jaxnets.train.precision.Policy` (None: float32).

    Returns:
      An :class:`Objective`, whose metrics are ``loss`` and the given ones.

    Example:
        >>> import jax, numpy as np, jaxnets as jn
        >>> model = jn.Dense(2)
        >>> _, params, state = model.init(jax.random.key(0), (4, 3))
        >>> objective = jn.train.supervised(model, "softmax_cross_entropy")
        >>> batch = (np.ones((4, 3), np.float32), np.zeros(4, np.int32))
        >>> loss, (new_state, metrics) = objective(params, state, batch, key=None, train=True)
        >>> loss.shape, sorted(metrics)
        ((), ['accuracy', 'loss'])
    """
    if not isinstance(model, Layer):
        raise TypeError(f"supervised: model must be a jaxnets Layer, got {received(model)}")
    loss_fn = losses.get(loss, where="supervised")
    check_metrics("supervised", metrics)
    metric_fns = dict(default_metrics(loss_fn) if metrics is None else metrics)
    cast = (lambda x: x) if precision is None else precision.cast_inputs
    where = f"supervised({model.kind}, {loss_fn.__name__})"

    def objective(params, state, batch, *, key, train):
        flag(where, "train", train)
        inputs, labels = _pair(batch)
        outputs, new_state = model.apply(params, state, cast(inputs), key=key, train=train)
        value = jnp.mean(loss_fn(outputs, labels))
        out = {"loss": value}
        for name, fn in metric_fns.items():
            out[name] = jnp.mean(fn(outputs, labels))
        return value, (new_state, out)

    objective.__qualname__ = objective.__name__ = where
    return objective


def _pair(batch: Any) -> tuple[Any, Any]:
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise TypeError(
            f"supervised objective: expected a batch (inputs, labels), got "
            f"{type(batch).__name__}"
            + (f" of {len(batch)} items" if isinstance(batch, tuple | list) else "")
            + "; pass an objective for other batch forms"
        )
    return batch[0], batch[1]


def is_objective(fn: Any) -> TypeGuard[Callable[..., Any]]:
    """Whether ``fn`` is an objective (it takes a ``train`` keyword) rather than a
    per-example loss ``loss(outputs, labels)``.

    Args:
      fn: the value to classify, such as a loss name or a function.

    Returns:
      True when ``fn`` is callable and has a ``train`` parameter that can be passed by
      keyword; False otherwise, also when its signature cannot be read.
    """
    if not callable(fn):
        return False
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "train" in parameters and parameters["train"].kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )


class Update(NamedTuple):
    """One optimisation inside a train step: ``objective`` differentiated with respect to
    ``params[part]`` (the whole params when ``part`` is None), updated by ``optimizer``
    with ``opt_state[part]``. Its key is the step's key, folded with the part's name."""

    objective: Objective
    optimizer: optax.GradientTransformation
    part: str | None = None

    @property
    def name(self) -> str:
        """The objective's name, for messages."""
        return getattr(self.objective, "__name__", type(self.objective).__name__)


def part_key(key: jax.Array | None, part: str | None) -> jax.Array | None:
    """The key stream of a named part: ``fold_in(key, crc32(part))`` (the key itself for
    the whole model).

    Args:
      key: the step's PRNG key, or None.
      part: the part's name, or None for the whole model.

    Returns:
      The part's key; ``key`` itself when either is None.
    """
    if key is None or part is None:
        return key
    return jax.random.fold_in(key, zlib.crc32(part.encode()))


def make_updates(
    model: Layer | Mapping[str, Layer] | None,
    loss: Any,
    optimizer: Any,
    *,
    metrics: Mapping[str, MetricFn] | None,
    precision: Policy,
    where: str = "make_train_step",
) -> list[Update]:
    """The updates of a step from :func:`~jaxnets.make_train_step`'s arguments.

    Args:
      model: the network (needed for a per-example loss), a dict of networks by part
        (pairs' parts are checked against it), or None.
      loss: a loss name or per-example function (with ``model`` a Layer), an objective,
        or a sequence of ``(part, objective)`` pairs run in that order.
      optimizer: the optax optimizer, or with pairs a dict of them by part.
      metrics: per-example metrics for a per-example loss; must be None otherwise.
      precision: the policy; only the objective built for a per-example loss uses it, to
        cast its inputs.
      where: the function named in the error messages.

    Returns:
      The list of :class:`Update`: one, or one per pair in order.
    """
    if isinstance(loss, Sequence) and not isinstance(loss, str):
        return _part_updates(model, loss, optimizer, metrics, where)
    check_optimizer(optimizer, where, "optimizer")
    if is_objective(loss):
        if metrics is not None:
            raise ValueError(
                f"{where}: metrics= are for a per-example loss; an objective returns its "
                f"own metrics (got both metrics= and the objective "
                f"{getattr(loss, '__name__', loss)!r})"
            )
        return [Update(loss, optimizer)]
    loss_fn = losses.get(loss, where=where)
    if not isinstance(model, Layer):
        raise TypeError(
            f"{where}: a per-example loss needs model= to be a jaxnets Layer, got "
            f"{type(model).__name__}; for several models pass (part, objective) pairs"
        )
    check_metrics(where, metrics)
    return [Update(supervised(model, loss_fn, metrics=metrics, precision=precision), optimizer)]


def _part_updates(model, pairs, optimizers, metrics, where) -> list[Update]:
    if metrics is not None:
        raise ValueError(
            f"{where}: metrics= are for a per-example loss, not for (part, objective) pairs"
        )
    if not isinstance(optimizers, Mapping):
        raise TypeError(
            f"{where}: (part, objective) pairs need optimizer= to be a dict of optax "
            f"optimizers by part, got {type(optimizers).__name__}"
        )
    if not pairs:
        raise ValueError(f"{where}: the sequence of (part, objective) pairs is empty")
    updates = []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, tuple | list) and len(pair) == 2 and isinstance(pair[0], str)):
            raise TypeError(
                f"{where}: item {i} of the objectives should be a (part name, objective) "
                f"pair, got {pair!r}"
            )
        part, objective = pair
        if not is_objective(objective):
            raise TypeError(
                f"{where}: the objective of part {part!r} should be a function "
                f"objective(params, state, batch, *, key, train), got {objective!r}"
            )
        if part not in optimizers:
            raise ValueError(
                f"{where}: part {part!r} has no optimizer; optimizer= has {sorted(optimizers)}"
            )
        if isinstance(model, Mapping) and part not in model:
            raise ValueError(f"{where}: part {part!r} is not a model; models are {sorted(model)}")
        check_optimizer(optimizers[part], where, f"optimizer[{part!r}]")
        updates.append(Update(objective, optimizers[part], part))
    return updates


def check_optimizer(optimizer: Any, where: str, what: str = "optimizer") -> Any:
    """``optimizer`` if it is an optax optimizer (``init`` and ``update`` functions), else
    a TypeError naming ``where`` and ``what`` (and the fix, for a name or a factory).

    Args:
      optimizer: the value to check.
      where: the function named in the error.
      what: the argument named in the error.

    Returns:
      ``optimizer`` itself.
    """
    if callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None)):
        return optimizer
    hint = ""
    if isinstance(optimizer, str):
        hint = (
            f"; build one from a name with jaxnets.optim.make_optimizer({optimizer!r}, "
            f"learning_rate)"
        )
    elif callable(optimizer):
        name = getattr(optimizer, "__name__", type(optimizer).__name__)
        package = (getattr(optimizer, "__module__", None) or "").split(".")[0]
        full = f"{package}.{name}" if package else name
        hint = f"; {full} makes one: call it, e.g. {full}(1e-3)"
    raise TypeError(
        f"{where}: {what} must be an optax GradientTransformation such as "
        f"optax.adam(1e-3), got {received(optimizer)}{hint}"
    )


def check_metrics(where: str, metrics: Any) -> None:
    """``metrics`` must be None or a dict of per-example ``metric(outputs, labels)`` by name.

    Args:
      where: the function named in the error.
      metrics: the value to check.

    Raises:
      TypeError: not a dict, a name that is not a string, or a metric that is not callable.
    """
    if metrics is None:
        return
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"{where}: metrics must be a dict of metric(outputs, labels) functions by name, "
            f"such as {{'accuracy': jn.losses.correct}}, got {received(metrics)}"
        )
    for name, fn in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"{where}: metrics' names must be strings, got {received(name)}")
        if not callable(fn):
            raise TypeError(
                f"{where}: metrics[{name!r}] must be a function metric(outputs, labels), got "
                f"{received(fn)}"
            )


def check_output(name: str, out: Any, state: Any) -> tuple[jax.Array, Any, dict]:
    """``out`` of the objective called ``name`` as ``(loss, new_state, metrics)``, checked
    at trace time: a clear error names the objective and what came.

    Args:
      name: the objective's name, for the errors.
      out: what the objective returned, expected ``(loss, (new_state, metrics))``.
      state: the state the objective was given; ``new_state`` must have its structure.

    Returns:
      ``(loss, new_state, metrics)``, the metrics as a plain dict.

    Raises:
      TypeError: for a wrong form, a loss that is not a floating-point scalar, or a
        metric that is not a scalar under a string name.
      ValueError: when ``new_state`` has another structure than ``state``.
    """
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], tuple | list)):
        raise TypeError(
            f"objective {name!r}: should return (loss, (new_state, metrics)), got {_describe(out)}"
        )
    loss, aux = out
    if len(aux) != 2:
        raise TypeError(
            f"objective {name!r}: its second output should be (new_state, metrics), got "
            f"a {type(aux).__name__} of {len(aux)} items"
        )
    new_state, metrics = aux
    if jnp.ndim(loss) != 0 or not jnp.issubdtype(jnp.result_type(loss), jnp.floating):
        raise TypeError(
            f"objective {name!r}: the loss should be a floating-point scalar, got "
            f"{_describe(loss)}; average it over the batch"
        )
    # PyTreeDef comes from jaxlib's C++ extension, which ships no stubs
    if jax.tree.structure(new_state) != jax.tree.structure(state):  # type: ignore[operator]
        raise ValueError(
            f"objective {name!r}: new_state should have the structure of state "
            f"{jax.tree.structure(state)}, got {jax.tree.structure(new_state)}"
        )
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"objective {name!r}: metrics should be a dict of scalars, got {_describe(metrics)}"
        )
    for key, value in metrics.items():
        if not isinstance(key, str) or jnp.ndim(value) != 0:
            raise TypeError(
                f"objective {name!r}: metric {key!r} should be a scalar under a string name, "
                f"got {_describe(value)}"
            )
    return loss, new_state, dict(metrics)


def _describe(x: Any) -> str:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"an array of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"a {type(x).__name__}"
