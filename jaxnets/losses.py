"""Losses (thin, per-example wrappers over ``optax.losses``) and metrics.

Every loss here maps ``(outputs, labels)`` of a batch to one value per example, so a
train step can average them and an evaluation can sum them exactly once per example.

Shapes are checked always (they are known under ``jit``), label values only when the
labels are concrete (an eager call). Under ``jit`` values cannot be checked, and a bad
one is not an error: an integer label of ``-1`` is read as the last class, one
``>= classes`` gives a NaN loss; a binary target outside ``[0, 1]`` (or a hinge label
other than -1, 0, 1) gives a finite but meaningless loss. :func:`jaxnets.fit` checks its
data on the host before the first step, so only a hand-written jitted loop meets this.

Example:
    >>> import jax.numpy as jnp, jaxnets as jn
    >>> logits = jnp.array([[2.0, 0.0], [0.0, 2.0]])
    >>> jn.losses.accuracy(logits, jnp.array([0, 0])).item()
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets.core.arguments import received

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


def _per_example(values: jax.Array) -> jax.Array:
    """Average every axis but the batch axis."""
    return values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values


def _array(where: str, name: str, value: Any) -> Any:
    """``value`` as an array (lists and numbers are converted), else a TypeError."""
    if isinstance(value, jax.Array | np.ndarray):
        return value
    if isinstance(value, list | tuple | int | float | np.generic) and not isinstance(value, bool):
        try:
            return jnp.asarray(value)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"{where}: {name} must be an array, got {received(value)}")


def _concrete(x: jax.Array) -> np.ndarray | None:
    """The host values of ``x``, or None under ``jit`` (a tracer has none)."""
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _check_values(where: str, labels: jax.Array, bad: Callable, expected: str) -> None:
    values = _concrete(labels)
    if values is not None and values.size:
        wrong = bad(values)
        if wrong.any():
            raise ValueError(
                f"{where}: labels must be {expected}, got {values[wrong].flat[0].item()!r} at "
                f"index {tuple(int(i) for i in np.argwhere(wrong)[0])}"
            )


def _check_size(where: str, outputs: jax.Array, labels: jax.Array, what: str) -> None:
    if math.prod(labels.shape) != math.prod(outputs.shape):
        raise ValueError(
            f"{where}: labels must hold one target per value of the {what} {outputs.shape} "
            f"(the same shape), got labels of shape {labels.shape}"
        )


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy of softmax(logits) with integer class ids or one-hot/soft labels.

    Args:
      logits: scores ``(N, ..., C)``, computed in float32.
      labels: integer class ids of shape ``logits.shape[:-1]``, or one-hot (or soft)
        targets of the logits' shape.

    Returns:
      The loss per example, shape ``(N,)`` (extra axes averaged).

    Raises:
      ValueError: when the labels' shape does not fit the logits, or (concrete labels
        only) a class id is outside ``[0, C)``; under ``jit`` see the module's notes.
    """
    where = "softmax_cross_entropy"
    logits = _array(where, "logits", logits).astype(jnp.float32)
    labels = _array(where, "labels", labels)
    if logits.ndim < 1:
        raise ValueError(f"{where}: logits must have a class axis (N, ..., C), got shape ()")
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"{where}: integer labels must have shape {logits.shape[:-1]} "
                f"for logits {logits.shape}, got {labels.shape}"
            )
        classes = logits.shape[-1]
        _check_values(
            where, labels, lambda y: (y < 0) | (y >= classes), f"class ids in [0, {classes})"
        )
        return _per_example(optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels))
    if labels.shape != logits.shape:
        hint = ""
        if labels.shape == logits.shape[:-1]:
            hint = "; class ids must be integers: labels.astype(jnp.int32)"
        raise ValueError(
            f"{where}: float labels must be one-hot (or soft) targets of the logits' shape "
            f"{logits.shape}, got labels of shape {labels.shape}{hint}"
        )
    return _per_example(optax.losses.softmax_cross_entropy(logits, labels))


def sigmoid_binary_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Binary cross-entropy of sigmoid(logits) with 0/1 labels of the same shape.

    Args:
      logits: scores, computed in float32.
      labels: 0/1 (or soft) targets, reshaped to the logits' shape.

    Returns:
      The loss per example, shape ``(N,)`` (extra axes averaged).

    Raises:
      ValueError: labels of another size than the logits, or (concrete labels only)
        outside ``[0, 1]``.
    """
    where = "sigmoid_binary_cross_entropy"
    logits = _array(where, "logits", logits).astype(jnp.float32)
    labels = _array(where, "labels", labels)
    _check_size(where, logits, labels, "logits")
    _check_values(where, labels, lambda y: (y < 0) | (y > 1), "binary targets in [0, 1]")
    labels = labels.reshape(logits.shape).astype(jnp.float32)
    return _per_example(optax.losses.sigmoid_binary_cross_entropy(logits, labels))


def squared_error(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean squared error per example.

    Args:
      predictions: the model's outputs, computed in float32.
      targets: the wanted values, reshaped to the predictions' shape.

    Returns:
      The squared error averaged over all but the batch axis, shape ``(N,)``.

    Raises:
      ValueError: targets of another size than the predictions.
    """
    where = "squared_error"
    predictions = _array(where, "predictions", predictions)
    targets = _array(where, "targets", targets)
    if math.prod(targets.shape) != math.prod(predictions.shape):
        raise ValueError(
            f"{where}: targets must hold one value per prediction (predictions of shape "
            f"{predictions.shape}), got targets of shape {targets.shape}"
        )
    targets = targets.reshape(predictions.shape).astype(predictions.dtype)
    return _per_example(optax.losses.squared_error(predictions.astype(jnp.float32), targets))


def hinge(scores: jax.Array, labels: jax.Array) -> jax.Array:
    """Hinge loss ``max(0, 1 - y * s)`` with labels in {-1, +1} (or {0, 1}, mapped).

    Args:
      scores: the model's scores, computed in float32.
      labels: -1/+1 or 0/1 labels (0 counts as -1), reshaped to the scores' shape.

    Returns:
      The loss per example, shape ``(N,)`` (extra axes averaged).

    Raises:
      ValueError: labels of another size than the scores, or (concrete labels only)
        other than -1, 0 and 1.
    """
    where = "hinge"
    scores = _array(where, "scores", scores)
    labels = _array(where, "labels", labels)
    _check_size(where, scores, labels, "scores")
    _check_values(where, labels, lambda y: ~np.isin(y, (-1, 0, 1)), "-1/+1 (or 0/1)")
    labels = labels.reshape(scores.shape).astype(jnp.float32)
    labels = jnp.where(labels == 0, -1.0, labels)
    return _per_example(optax.losses.hinge_loss(scores.astype(jnp.float32), labels))


LOSSES: dict[str, LossFn] = {
    "softmax_cross_entropy": softmax_cross_entropy,
    "cross_entropy": softmax_cross_entropy,
    "sigmoid_binary_cross_entropy": sigmoid_binary_cross_entropy,
    "binary_cross_entropy": sigmoid_binary_cross_entropy,
    "squared_error": squared_error,
    "mse": squared_error,
    "hinge": hinge,
}


def get(loss: str | LossFn, *, where: str = "losses.get") -> LossFn:
    """Resolve a loss name (see ``LOSSES``) or pass a callable through.

    Args:
      loss: a name in ``LOSSES`` or a callable ``(outputs, labels) -> per-example loss``.
      where: the function named in the errors.

    Returns:
      The loss function.

    Raises:
      TypeError: for a value that is neither a name nor a callable.
      ValueError: for a name that is not in ``LOSSES``.
    """
    if callable(loss):
        return loss
    names = ", ".join(repr(n) for n in sorted(LOSSES))
    if not isinstance(loss, str):
        raise TypeError(
            f"{where}: loss must be a loss name ({names}) or a function loss(outputs, labels), "
            f"got {received(loss)}"
        )
    if loss in LOSSES:
        return LOSSES[loss]
    raise ValueError(f"{where}: loss must be one of {names} or a function, got {loss!r}")


def correct(outputs: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example 0/1 correctness of predictions.

    Multi-class outputs ``(..., C)`` are compared by argmax with integer or one-hot labels;
    a single output column (or outputs shaped like the labels) is a binary logit
    thresholded at 0.

    Args:
      outputs: the model's outputs (logits or scores).
      labels: integer class ids, one-hot targets, or binary labels (positive means 1).

    Returns:
      Per-example 0/1 floats, shape ``(N,)`` (extra axes averaged).

    Raises:
      ValueError: labels that fit the outputs in none of those forms.
    """
    outputs = _array("correct", "outputs", outputs)
    labels = _array("correct", "labels", labels)
    by_class = outputs.ndim == labels.ndim + 1 and outputs.shape[-1] > 1
    if (by_class and labels.shape != outputs.shape[:-1]) or (
        not by_class and math.prod(outputs.shape) != math.prod(labels.shape)
    ):
        raise ValueError(
            f"correct: labels of shape {labels.shape} fit outputs of shape {outputs.shape} "
            f"neither as class ids (shape {outputs.shape[:-1]}) nor as targets of the "
            f"outputs' shape"
        )
    if outputs.ndim == labels.ndim + 1 and outputs.shape[-1] > 1:
        hits = jnp.argmax(outputs, axis=-1) == labels
    elif (
        outputs.ndim == labels.ndim
        and outputs.shape == labels.shape
        and outputs.shape[-1] > 1
        and not (jnp.issubdtype(labels.dtype, jnp.integer))
    ):
        hits = jnp.argmax(outputs, axis=-1) == jnp.argmax(labels, axis=-1)
    else:
        hits = (outputs.reshape(labels.shape) > 0) == (labels > 0)
    return _per_example(hits.astype(jnp.float32))


def accuracy(outputs: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of correct predictions in the batch (see :func:`correct`).

    Args:
      outputs: the model's outputs (logits or scores).
      labels: the labels, in any form :func:`correct` accepts.

    Returns:
      A scalar float32 array in [0, 1].
    """
    return jnp.mean(correct(outputs, labels))
