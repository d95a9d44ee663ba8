"""Helpers that ``jaxnets train`` and ``jaxnets evaluate`` share."""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optax

    from jaxnets.core import Layer
    from jaxnets.data import ArrayDataset
    from jaxnets.train.state import TrainState


def use_cache(args: argparse.Namespace) -> None:
    """Turn on the persistent compilation cache, unless ``--no-compile-cache``.

    Args:
      args: the parsed options; reads ``no_compile_cache`` and ``compile_cache`` (the
        folder, or None for :func:`jaxnets.train.cache.default_cache_dir`).

    Returns:
      None; the cache is set in JAX's global config.
    """
    if args.no_compile_cache:
        return
    from jaxnets.train.cache import enable_compilation_cache

    enable_compilation_cache(args.compile_cache)


def build_optimizer(config: dict[str, Any], steps_per_epoch: int) -> optax.GradientTransformation:
    """The run's whole optimizer, clipping and accumulation included.

    It is built the same way for training and for restoring the run's checkpoints.

    Args:
      config: the run's options (``optimizer``, ``lr``, ``schedule``, ``epochs``,
        ``warmup_epochs``, ``weight_decay``, ``freeze``, ``clip_norm``, ``accumulate``).
      steps_per_epoch: batches per epoch.

    Returns:
      The optimizer.
    """
    from jaxnets.optim import make_optimizer, schedule

    updates_per_epoch = steps_per_epoch / config["accumulate"]
    sched = schedule(
        config["schedule"],
        config["lr"],
        int(config["epochs"] * updates_per_epoch),
        warmup_steps=int(config["warmup_epochs"] * updates_per_epoch),
    )
    return make_optimizer(
        config["optimizer"],
        sched,
        weight_decay=config["weight_decay"],
        freeze_patterns=config["freeze"],
        clip_norm=config["clip_norm"],
        accumulate_steps=config["accumulate"],
    )


def write_plots(
    out: str,
    model: Layer,
    ts: TrainState,
    test: ArrayDataset,
    history: dict[str, list[float]],
    precision: str,
) -> dict[str, str]:
    """Write the run's plots to ``out/plots``.

    Args:
      out: the run's folder.
      model: the trained model.
      ts: its train state.
      test: the test set, predicted for the confusion matrix and the image grid.
      history: the metrics per epoch, for the curves (none when empty).
      precision: the compute dtype of the predictions.

    Returns:
      The paths written, by plot: ``curves``, ``confusion``, ``predictions`` (images
      only) and ``filters`` (models with a first convolution only).
    """
    import numpy as np

    from jaxnets import plots
    from jaxnets.data import eval_batches
    from jaxnets.train import make_predict

    predict = make_predict(model, precision=precision)
    batch_preds = []
    for x, _, mask in eval_batches(test, 256):
        logits = np.asarray(predict(ts.params, ts.state, x), np.float32)
        batch_preds.append(logits.argmax(-1)[mask > 0])
    preds = np.concatenate(batch_preds)
    folder = os.path.join(out, "plots")
    written = {}
    if history:
        written["curves"] = plots.plot_history(history, os.path.join(folder, "curves.png"))
    written["confusion"] = plots.plot_confusion_matrix(
        test.labels, preds, os.path.join(folder, "confusion.png")
    )
    if test.inputs.ndim == 4 or (test.inputs.ndim == 2 and test.inputs.shape[1] >= 16):
        with contextlib.suppress(ValueError):  # inputs that are not images
            written["predictions"] = plots.plot_image_grid(
                test.inputs, test.labels, preds, os.path.join(folder, "predictions.png")
            )
    if plots.first_conv_kernel(ts.params) is not None:
        written["filters"] = plots.plot_filters(ts.params, os.path.join(folder, "filters.png"))
    return written


def format_metrics(metrics: dict[str, float]) -> str:
    """``test_<name>=<value>`` of each metric, two spaces apart.

    Args:
      metrics: the test metrics by name.

    Returns:
      One line of text, each value with four decimals.
    """
    return "  ".join(f"test_{k}={v:.4f}" for k, v in metrics.items())
