"""A small vision Transformer on scikit-learn's 8x8 digits: 2x2 patches, mean pooling.

Usage: python examples/vit_digits.py [--epochs 150] [--layers 2] [--pool cls] [--dropout 0.1]

Each 8x8 digit becomes 16 tokens of 2x2 pixels; two pre-norm blocks (``jn.repeat``) and a
linear head on the mean of the tokens classify it (``--pool cls`` adds a class token).
Training uses AdamW with a warmup and a cosine decay, label smoothing 0.1, and random
one-pixel shifts of the digits on the device (as ``examples/cnn_digits.py``). Prints the
test accuracy every 10 epochs (a curve; nothing is selected on it), and as its last line
``test_accuracy=...``.
"""

from __future__ import annotations

import argparse
import time

import jax
import optax

import jaxnets as jn
from jaxnets.demo import smoothed_cross_entropy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--patch-size", type=int, default=2)
    parser.add_argument("--pool", choices=["cls", "mean"], default="mean")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    train, test = jn.data.load_digits()
    model = jn.models.vit(
        8,
        args.patch_size,
        d_model=args.d_model,
        heads=args.heads,
        layers=args.layers,
        pool=args.pool,
        dropout=args.dropout,
    )
    steps = args.epochs * jn.data.steps_per_epoch(train, args.batch_size)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, args.learning_rate, min(100, steps // 10), steps, args.learning_rate * 0.01
    )
    optimizer = optax.chain(
        optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=0.05)
    )
    ts = jn.create_train_state(model, optimizer, (args.batch_size, 8, 8, 1), seed=args.seed)
    metrics = {"accuracy": jn.losses.correct}
    train_step = jn.make_train_step(model, smoothed_cross_entropy, optimizer, metrics=metrics)
    eval_step = jn.make_eval_step(model, smoothed_cross_entropy, metrics=metrics)
    shift = jax.jit(jn.data.augmentation(crop_padding=1))
    aug_key = jax.random.key(args.seed + 10_000)
    step = 0
    for epoch in range(args.epochs):
        for x, y in jn.data.batches(train, args.batch_size, seed=args.seed, epoch=epoch):
            ts, _ = train_step(ts, (shift(jax.random.fold_in(aug_key, step), x), y))
            step += 1
        if (epoch + 1) % 10 == 0:
            accuracy = jn.evaluate(eval_step, ts, test)["accuracy"]
            print(f"epoch {epoch + 1:3d}  {time.perf_counter() - start:6.1f}s  test {accuracy:.4f}")
    accuracy = jn.evaluate(eval_step, ts, test)["accuracy"]
    print(f"steps={step} total_time={time.perf_counter() - start:.1f}s")
    print(f"test_accuracy={accuracy:.4f}")


if __name__ == "__main__":
    main()
