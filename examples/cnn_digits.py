"""A small CNN on scikit-learn's 8x8 digits, with random one-pixel shifts as augmentation.

Usage: python examples/cnn_digits.py [--epochs 40] [--seeds 0,1,2] [--no-augment]

This example augments in the data pipeline: each batch goes through a jitted
``jaxnets.data.augmentation(crop_padding=1)`` on the device before the train step, keyed
by ``fold_in(key, step)``. (The demo, ``python -m jaxnets demo``, puts the same shifts in
the model as an ``Augment`` layer instead; the two are equivalent.) Horizontal flips stay
off: a mirrored digit is not a digit. The loss is cross-entropy with label smoothing 0.1,
as in the demo. Prints the test accuracy for each seed.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import optax

import jaxnets as jn
from jaxnets.demo import smoothed_cross_entropy


def cnn(num_classes: int = 10) -> jn.Layer:
    return jn.serial(
        jn.Conv(32, 3, activation="relu"),
        jn.Conv(32, 3, activation="relu"),
        jn.MaxPool(2),
        jn.Conv(64, 3, activation="relu"),
        jn.Flatten(),
        jn.Dense(128, activation="relu"),
        jn.Dropout(0.25),
        jn.Dense(num_classes),
    )


def train_and_test(seed: int, epochs: int, batch_size: int, augment: bool) -> float:
    train, test = jn.data.load_digits()
    model = cnn()
    steps = epochs * jn.data.steps_per_epoch(train, batch_size)
    optimizer = optax.adamw(optax.cosine_decay_schedule(3e-3, steps), weight_decay=1e-3)
    ts = jn.create_train_state(model, optimizer, (batch_size, 8, 8, 1), seed=seed)
    metrics = {"accuracy": jn.losses.correct}
    train_step = jn.make_train_step(model, smoothed_cross_entropy, optimizer, metrics=metrics)
    eval_step = jn.make_eval_step(model, smoothed_cross_entropy, metrics=metrics)
    shift = jax.jit(jn.data.augmentation(crop_padding=1))
    aug_key = jax.random.key(seed + 10_000)
    step = 0
    for epoch in range(epochs):
        for x, y in jn.data.batches(train, batch_size, seed=seed, epoch=epoch):
            if augment:
                x = shift(jax.random.fold_in(aug_key, step), x)
            ts, _ = train_step(ts, (x, y))
            step += 1
    return jn.evaluate(eval_step, ts, test)["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--no-augment", action="store_true", help="train without the shifts")
    args = parser.parse_args()
    accuracies = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        start = time.perf_counter()
        accuracy = train_and_test(seed, args.epochs, args.batch_size, not args.no_augment)
        accuracies.append(accuracy)
        print(f"seed={seed} test_accuracy={accuracy:.4f} ({time.perf_counter() - start:.1f} s)")
    if len(accuracies) > 1:
        print(f"mean={np.mean(accuracies):.4f} min={min(accuracies):.4f}")


if __name__ == "__main__":
    main()
