"""Row-by-row digits: an LSTM reads each 8x8 scikit-learn digit as 8 steps of 8 pixels.

Usage: python examples/lstm_digits.py [--epochs 100] [--hidden 128] [--seed 0]
       [--unidirectional] [--shift 1] [--dropout 0.2]

The small version of the classic row-by-row MNIST task. A bidirectional LSTM (one reads
the rows top-down, one bottom-up) with one-pixel random shifts in training and dropout
before the logits, trained with ``jaxnets.fit`` (AdamW, cosine decay) on the first half of
the digits. Prints the test accuracy on the second half (899 images, the split of
scikit-learn's own example) as its last line: ``test_accuracy=...``.
"""

from __future__ import annotations

import argparse
import time

import optax

import jaxnets as jn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unidirectional", action="store_true")
    parser.add_argument("--shift", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    args = parser.parse_args()

    train, test = jn.data.load_digits()
    model = jn.models.lstm_classifier(
        hidden=args.hidden,
        bidirectional=not args.unidirectional,
        dropout=args.dropout,
        shift=args.shift,
    )
    steps = args.epochs * jn.data.steps_per_epoch(train, args.batch_size)
    schedule = optax.cosine_decay_schedule(args.learning_rate, steps)
    optimizer = optax.adamw(schedule, weight_decay=args.weight_decay)
    start = time.perf_counter()
    result = jn.fit(
        model,
        train,
        optimizer=optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        val_data=test,
        seed=args.seed,
        progress=False,
    )
    history = result.history
    for epoch in range(0, args.epochs, max(1, args.epochs // 10)):
        print(
            f"epoch {epoch + 1:3d}  loss {history['loss'][epoch]:.4f}  "
            f"test_accuracy {history['val_accuracy'][epoch]:.4f}"
        )
    eval_step = jn.make_eval_step(model, "softmax_cross_entropy")
    final = jn.evaluate(eval_step, result.state, test)
    print(f"trained {args.epochs} epochs in {time.perf_counter() - start:.1f}s")
    print(f"test_accuracy={final['accuracy']:.4f}")


if __name__ == "__main__":
    main()
