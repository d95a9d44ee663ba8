"""Helpers that ``jaxnets train`` and ``jaxnets evaluate`` share."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optax

    from jaxnets.core import Layer
    from jaxnets.data import ArrayDataset
    from jaxnets.train.state import TrainState


def use_cache(config: Mapping[str, Any]) -> None:
    """Turn on the persistent compilation cache, unless ``no_compile_cache``.

    Args:
      config: the options; reads ``no_compile_cache`` and ``compile_cache`` (the
        folder, or None for :func:`jaxnets.train.cache.default_cache_dir`).

    Returns:
      None; the cache is set in JAX's global config.
    """
    if config["no_compile_cache"]:
        return
    from jaxnets.train.cache import enable_compilation_cache

    enable_compilation_cache(config["compile_cache"])


def write_json(path: str, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` to ``path`` as indented JSON, atomically (a reader sees the old
    file or the new one, never a part).

    Args:
      path: the file.
      payload: JSON-serialisable values by name.

    Returns:
      None.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def build_optimizer(
    config: Mapping[str, Any], steps_per_epoch: int
) -> optax.GradientTransformation:
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
    data: ArrayDataset,
    precision: str,
    *,
    history: Mapping[str, list[float]] | None = None,
    prefix: str = "",
    filters: bool = True,
) -> dict[str, str]:
    """Write the run's plots to ``out/plots``.

    Args:
      out: the run's folder.
      model: the trained model.
      ts: its train state.
      data: the examples predicted for the confusion matrix and the image grid.
      precision: the compute dtype of the predictions.
      history: the metrics per epoch, for the curves (none when empty or None).
      prefix: put before the file names of the confusion matrix and the grid (``val_``
        for the validation split).
      filters: also draw the first convolution's filters (models that have one).

    Returns:
      The paths written, by plot: ``curves``, ``confusion``, ``predictions`` (images
      only) and ``filters``.
    """
    import numpy as np

    from jaxnets import plots
    from jaxnets.data import eval_batches
    from jaxnets.train import make_predict

    predict = make_predict(model, precision=precision)
    batch_preds = []
    for x, _, mask in eval_batches(data, 256):
        logits = np.asarray(predict(ts.params, ts.state, x), np.float32)
        batch_preds.append(logits.argmax(-1)[mask > 0])
    preds = np.concatenate(batch_preds)
    folder = os.path.join(out, "plots")
    written = {}
    if history:
        written["curves"] = plots.plot_history(dict(history), os.path.join(folder, "curves.png"))
    written["confusion"] = plots.plot_confusion_matrix(
        data.labels, preds, os.path.join(folder, f"{prefix}confusion.png")
    )
    if data.inputs.ndim == 4 or (data.inputs.ndim == 2 and data.inputs.shape[1] >= 16):
        with contextlib.suppress(ValueError):  # inputs that are not images
            written["predictions"] = plots.plot_image_grid(
                data.inputs, data.labels, preds, os.path.join(folder, f"{prefix}predictions.png")
            )
    if filters and plots.first_conv_kernel(ts.params) is not None:
        written["filters"] = plots.plot_filters(ts.params, os.path.join(folder, "filters.png"))
    return written


def format_metrics(metrics: Mapping[str, float], split: str) -> str:
    """``<split>_<name>=<value>`` of each metric, two spaces apart.

    Args:
      metrics: the metrics by name.
      split: ``val`` or ``test``.

    Returns:
      One line of text, each value with four decimals.
    """
    return "  ".join(f"{split}_{k}={v:.4f}" for k, v in metrics.items())
