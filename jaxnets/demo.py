"""The demo: train the default network on scikit-learn's digits and report test accuracy."""

from __future__ import annotations

import os
import time

import optax

from jaxnets.data.digits import load_digits
from jaxnets.models.mlp import mlp
from jaxnets.plots import plot_history
from jaxnets.summary import summary
from jaxnets.train.loop import fit


def run_demo(
    *, epochs: int = 150, batch_size: int = 32, seed: int = 0, out_dir: str = "runs/demo",
    progress: bool = True,
) -> float:
    """Train a 256-256 ReLU MLP with dropout 0.5 (AdamW, cosine schedule) on the digits
    split, save the loss/accuracy curves as a PNG in ``out_dir``, print and return the
    test accuracy. Prints ``test_accuracy=0.XXXX`` as its final line.
    """
    train, test = load_digits()
    model = mlp((256, 256), num_classes=10, dropout=0.5)
    summary(model, (batch_size,) + train.inputs.shape[1:])
    steps = epochs * (len(train) // batch_size)
    optimizer = optax.adamw(optax.cosine_decay_schedule(3e-3, max(1, steps)), weight_decay=1e-3)
    start = time.perf_counter()
    result = fit(
        model,
        train,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        val_data=test,
        seed=seed,
        progress=progress,
    )
    elapsed = time.perf_counter() - start
    path = plot_history(result.history, os.path.join(out_dir, "curves.png"))
    accuracy = result.history["val_accuracy"][-1] if epochs else float("nan")
    print(f"trained {epochs} epochs in {elapsed:.1f} s; curves saved to {path}")
    print(f"test_accuracy={accuracy:.4f}")
    return accuracy
