"""The demo: a small CNN with on-device augmentation on scikit-learn's digits.

``make demo`` (``python -m jaxnets demo``) trains :func:`digits_cnn` on the first half of
the 8x8 digits and prints the accuracy on the second half (899 images) as its last line.
"""

from __future__ import annotations

import os
import time

import jax
import optax

from jaxnets.core import Layer, serial
from jaxnets.data.augment import Augment
from jaxnets.data.digits import load_digits
from jaxnets.data.split import validation_split
from jaxnets.layers import Conv, Dense, Dropout, Flatten, MaxPool
from jaxnets.losses import correct, softmax_cross_entropy
from jaxnets.plots import plot_history
from jaxnets.summary import summary
from jaxnets.train.eval_step import evaluate, make_eval_step
from jaxnets.train.loop import fit

#: Epochs of the demo when the caller does not choose.
DEMO_EPOCHS = 40

#: The weight of the uniform distribution mixed into the one-hot targets.
LABEL_SMOOTHING = 0.1


def smoothed_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example softmax cross-entropy against one-hot targets smoothed by
    :data:`LABEL_SMOOTHING` (Szegedy et al. 2016): ``(1 - a) * onehot + a / classes``.

    Args:
      logits: scores ``(N, classes)``.
      labels: integer class ids ``(N,)``.

    Returns:
      The loss per example, shape ``(N,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> smoothed_cross_entropy(jnp.zeros((1, 10)), jnp.array([3])).round(4)
        Array([2.3026], dtype=float32)
    """
    targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), LABEL_SMOOTHING)
    return softmax_cross_entropy(logits, targets)


def digits_cnn(num_classes: int = 10, *, augment: bool = True, width: int = 32) -> Layer:
    """The demo's CNN for 8x8 grey images: with ``augment``, random one-pixel shifts
    (:func:`~jaxnets.data.Augment` with ``crop_padding=1``, zero fill, no flip: a mirrored
    digit is not a digit), then two 3x3 ReLU convolutions of ``width`` filters, 2x2 max
    pool (to 4x4), a 3x3 ReLU convolution of ``2 * width``, Dense 128 with ReLU,
    dropout 0.25 and the ``logits``.

    Args:
      num_classes: the number of outputs.
      augment: start with the random shifts (active in training only).
      width: the filters of the first two convolutions.

    Returns:
      The model, a :func:`~jaxnets.serial` named ``digits_cnn``.

    Example:
        >>> import jaxnets as jn
        >>> out, params, _ = jn.shape_tree(digits_cnn(), (2, 8, 8, 1))
        >>> out.shape, jn.count_params(params)
        ((2, 10), 160554)
    """
    layers: list = [("shift", Augment(crop_padding=1))] if augment else []
    layers += [
        ("conv1", Conv(width, 3, activation="relu")),
        ("conv2", Conv(width, 3, activation="relu")),
        ("pool1", MaxPool(2)),
        ("conv3", Conv(2 * width, 3, activation="relu")),
        ("flatten", Flatten()),
        ("dense", Dense(128, activation="relu")),
        ("dropout", Dropout(0.25)),
        ("logits", Dense(num_classes)),
    ]
    return serial(*layers, name="digits_cnn")


def run_demo(
    *,
    epochs: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    out_dir: str = "runs/demo",
    progress: bool = True,
    augment: bool = True,
) -> float:
    """Train :func:`digits_cnn` on the digits' training half (a seeded tenth of it held out
    for the validation curves) and report its accuracy on the test half, measured once.

    Label-smoothed cross-entropy, AdamW with learning rate 3e-3 and cosine decay, weight
    decay 1e-3, for ``epochs`` (default :data:`DEMO_EPOCHS`). Saves the loss/accuracy
    curves as ``curves.png`` in ``out_dir``, prints ``test_accuracy=0.XXXX`` as its final
    line and returns the accuracy.

    Args:
      epochs: the epochs to train (default :data:`DEMO_EPOCHS`).
      batch_size: the training batch size.
      seed: the seed of initialisation, shuffling, augmentation and dropout.
      out_dir: the folder for ``curves.png``.
      progress: show progress while training.
      augment: train with random shifts (False: the same CNN without them).

    Returns:
      The accuracy on the test half after the last epoch (NaN for ``epochs=0``).
    """
    epochs = DEMO_EPOCHS if epochs is None else epochs
    train, test = load_digits()
    train, val = validation_split(train, 0.1, seed=seed)  # the test half is used once, at the end
    model = digits_cnn(augment=augment)
    summary(model, (batch_size, *train.inputs.shape[1:]))
    steps = epochs * (len(train) // batch_size)
    optimizer = optax.adamw(optax.cosine_decay_schedule(3e-3, max(1, steps)), weight_decay=1e-3)
    start = time.perf_counter()
    result = fit(
        model,
        train,
        optimizer=optimizer,
        loss=smoothed_cross_entropy,
        metrics={"accuracy": correct},
        epochs=epochs,
        batch_size=batch_size,
        val_data=val,
        seed=seed,
        progress=progress,
    )
    elapsed = time.perf_counter() - start
    path = plot_history(result.history, os.path.join(out_dir, "curves.png"))
    accuracy = float("nan")
    if epochs:
        step = make_eval_step(model, smoothed_cross_entropy, metrics={"accuracy": correct})
        accuracy = evaluate(step, result.state, test)["accuracy"]
    shifts = "with" if augment else "without"
    print(f"trained {epochs} epochs ({shifts} random shifts) in {elapsed:.1f} s; curves: {path}")
    print(f"test_accuracy={accuracy:.4f}")
    return accuracy
