"""Losses (thin, per-example wrappers over ``optax.losses``) and metrics.

Every loss here maps ``(outputs, labels)`` of a batch to one value per example, so a
train step can average them and an evaluation can sum them exactly once per example.

Example:
    >>> import jax.numpy as jnp, jaxnets as jn
    >>> logits = jnp.array([[2.0, 0.0], [0.0, 2.0]])
    >>> jn.losses.accuracy(logits, jnp.array([0, 0])).item()
    0.5
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


def _per_example(values: jax.Array) -> jax.Array:
    """Average every axis but the batch axis."""
    return values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy of softmax(logits) with integer class ids or one-hot/soft labels.

    Args:
      logits: scores ``(N, ..., C)``, computed in float32.
      labels: integer class ids of shape ``logits.shape[:-1]``, or one-hot (or soft)
        targets of the logits' shape.

    Returns:
      The loss per example, shape ``(N,)`` (extra axes averaged).

    Raises:
      ValueError: when the labels' shape does not fit the logits.
    """
    logits = logits.astype(jnp.float32)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"softmax_cross_entropy: integer labels must have shape {logits.shape[:-1]} "
                f"for logits {logits.shape}, got {labels.shape}"
            )
        return _per_example(optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels))
    if labels.shape != logits.shape:
        raise ValueError(
            f"softmax_cross_entropy: one-hot labels must have the logits' shape "
            f"{logits.shape}, got {labels.shape}"
        )
    return _per_example(optax.losses.softmax_cross_entropy(logits, labels))


def sigmoid_binary_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Binary cross-entropy of sigmoid(logits) with 0/1 labels of the same shape.

    Args:
      logits: scores, computed in float32.
      labels: 0/1 (or soft) targets, reshaped to the logits' shape.

    Returns:
      The loss per example, shape ``(N,)`` (extra axes averaged).
    """
    logits = logits.astype(jnp.float32)
    labels = labels.reshape(logits.shape).astype(jnp.float32)
    return _per_example(optax.losses.sigmoid_binary_cross_entropy(logits, labels))


def squared_error(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean squared error per example.

    Args:
      predictions: the model's outputs, computed in float32.
      targets: the wanted values, reshaped to the predictions' shape.

    Returns:
      The squared error averaged over all but the batch axis, shape ``(N,)``.
    """
    targets = targets.reshape(predictions.shape).astype(predictions.dtype)
    return _per_example(optax.losses.squared_error(predictions.astype(jnp.float32), targets))


def hinge(scores: jax.Array, labels: jax.Array) -> jax.Array:
    """Hinge loss ``max(0, 1 - y * s)`` with labels in {-1, +1} (or {0, 1}, mapped).

    Args:
      scores: the model's scores, computed in float32.
      labels: -1/+1 or 0/1 labels (0 counts as -1), reshaped to the scores' shape.

    Returns:
      The loss per example, shape ``(N,)`` (extra axes averaged).
    """
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


def get(loss: str | LossFn) -> LossFn:
    """Resolve a loss name (see ``LOSSES``) or pass a callable through.

    Args:
      loss: a name in ``LOSSES`` or a callable ``(outputs, labels) -> per-example loss``.

    Returns:
      The loss function.

    Raises:
      ValueError: for a name that is not in ``LOSSES``.
    """
    if callable(loss):
        return loss
    if loss in LOSSES:
        return LOSSES[loss]
    raise ValueError(f"unknown loss {loss!r}; expected a callable or one of {sorted(LOSSES)}")


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
    """
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
