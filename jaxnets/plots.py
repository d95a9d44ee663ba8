"""Pictures of a training run, written as PNG files (matplotlib's Agg backend, no display).

Every function writes to a temporary name and renames it, so a reader never sees half a
PNG, and returns the path.

Example:
    >>> import os, tempfile
    >>> path = plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]},
    ...                     os.path.join(tempfile.mkdtemp(), "curves.png"))
    >>> os.path.basename(path), os.path.getsize(path) > 1000
    ('curves.png', True)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxnets._plot_args import _class_ids, _class_names, _path, _value_range
from jaxnets.core.arguments import count, flag


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> str:
    plt = _pyplot()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def plot_history(history: Mapping[str, Sequence[float]], path: str) -> str:
    """Curves per epoch, training and validation side by side: one panel for the loss,
    one per metric (``accuracy``...), and one for the learning rate ``lr`` if logged.

    Args:
      history: per-epoch values by name (``loss``, ``val_loss``, ``lr``...);
        ``epoch_time`` is not drawn.
      path: the PNG file to write (its folder is created).

    Returns:
      ``path``.

    Raises:
      TypeError: ``history`` is not a mapping of sequences, or ``path`` not a path.
    """
    where = "plot_history"
    if not isinstance(history, Mapping):
        raise TypeError(
            f"{where}: history must be a dict of per-epoch values ({{'loss': [...]}}), got "
            f"{history!r:.60} (a {type(history).__name__})"
        )
    for key, values in history.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise TypeError(
                f"{where}: history[{key!r}] must be a list of numbers, got {values!r:.60}"
            )
    path = _path(where, path)
    plt = _pyplot()
    skip = {"epoch_time", "lr"}
    names = [k for k in history if not k.startswith("val_") and k not in skip]
    names += [k[4:] for k in history if k.startswith("val_") and k[4:] not in names]
    names.sort(key=lambda k: k != "loss")  # the loss first, the metrics in their order
    if "lr" in history:
        names.append("lr")
    names = names or ["loss"]
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], names, strict=True):
        curves = [(metric, "train"), (f"val_{metric}", "validation")]
        for key, label in [("lr", None)] if metric == "lr" else curves:
            if key in history and len(history[key]):
                values = list(history[key])
                ax.plot(range(1, len(values) + 1), values, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate" if metric == "lr" else metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def confusion_matrix(labels: Any, predictions: Any, num_classes: int | None = None) -> np.ndarray:
    """Counts ``[true, predicted]`` as an integer matrix.

    Args:
      labels: the true class ids (any shape; flattened).
      predictions: the predicted class ids, as many as the labels.
      num_classes: the matrix size, a positive int (default: one more than the largest id
        seen).

    Returns:
      A ``(k, k)`` int64 array; entry ``[i, j]`` counts class ``i`` predicted as ``j``.

    Raises:
      ValueError: when the numbers of labels and predictions differ, or an id is negative,
        fractional or (with ``num_classes``) not below ``num_classes``.
      TypeError: for ids that are not numbers, or a ``num_classes`` that is not an int.

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 0, 1]).tolist()
        [[1, 0], [1, 1]]
    """
    where = "confusion_matrix"
    if num_classes is not None:
        num_classes = count(where, "num_classes", num_classes)
    labels = _class_ids(where, "labels", labels, num_classes)
    predictions = _class_ids(where, "predictions", predictions, num_classes)
    if labels.shape != predictions.shape:
        raise ValueError(f"{where}: {labels.size} labels but {predictions.size} predictions")
    k = num_classes or int(max(labels.max(initial=0), predictions.max(initial=0))) + 1
    matrix = np.zeros((k, k), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def plot_confusion_matrix(
    labels: Any,
    predictions: Any,
    path: str,
    *,
    class_names: Sequence[str] | None = None,
    normalize: bool = False,
) -> str:
    """A confusion matrix (rows: true class, columns: predicted) with counts in the cells,
    titled with the accuracy.

    Args:
      labels: the true class ids.
      predictions: the predicted class ids.
      path: the PNG file to write (its folder is created).
      class_names: the tick labels; their number sets the number of classes.
      normalize: show each row's fractions instead of the counts.

    Returns:
      ``path``.
    """
    where = "plot_confusion_matrix"
    class_names = _class_names(where, class_names)
    flag(where, "normalize", normalize)
    path = _path(where, path)
    k = len(class_names) if class_names is not None else None
    matrix = confusion_matrix(labels, predictions, k)
    plt = _pyplot()
    values = matrix / np.maximum(matrix.sum(1, keepdims=True), 1) if normalize else matrix
    k = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    size = max(4.0, 0.5 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(k), names, rotation=45 if k > 10 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"confusion matrix (accuracy {accuracy:.3f})")
    limit = values.max() / 2 if values.size else 0
    for i in range(k):
        for j in range(k):
            text = f"{values[i, j]:.2f}" if normalize else str(matrix[i, j])
            color = "white" if values[i, j] > limit else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _as_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, np.float32)
    if images.ndim == 2:  # flat vectors: square them if possible
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"cannot show inputs of shape {images.shape} as images")
        images = images.reshape(-1, side, side, 1)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"expected images (N, H, W, 1 or 3) or square vectors, got shape {images.shape}"
        )
    low, high = images.min(), images.max()
    return (images - low) / (high - low) if high > low else np.zeros_like(images)


def plot_image_grid(
    images: Any,
    labels: Any,
    predictions: Any | None,
    path: str,
    *,
    class_names: Sequence[str] | None = None,
    max_images: int = 36,
) -> str:
    """A grid of the first ``max_images`` images titled with the true label and, if
    given, the prediction (red when wrong).

    Args:
      images: ``(N, H, W, 1 or 3)``, or ``(N, D)`` vectors with ``D`` a square; the grid
        is scaled to the range of the images given.
      labels: the true class ids, one per image.
      predictions: the predicted class ids, or None.
      path: the PNG file to write (its folder is created).
      class_names: names shown instead of the ids.
      max_images: the most images drawn.

    Returns:
      ``path``.

    Raises:
      ValueError: for images of another shape, no images, or labels (predictions) that
        are not one per image.
    """
    where = "plot_image_grid"
    max_images = count(where, "max_images", max_images)
    class_names = _class_names(where, class_names)
    path = _path(where, path)
    n = len(np.asarray(images)) if np.ndim(images) else 0
    if n == 0:
        raise ValueError(
            f"{where}: images must hold at least one image, got 0 (shape {np.shape(images)})"
        )
    k = len(class_names) if class_names is not None else None
    ids = {}
    if labels is None:
        raise TypeError(f"{where}: labels must be one class id per image, got None")
    for what, values in (("labels", labels), ("predictions", predictions)):
        if values is None:
            continue
        ids[what] = _class_ids(where, what, values, k)
        if ids[what].size != n:
            raise ValueError(
                f"{where}: {what} must be one class id per image ({n}), got {ids[what].size}"
            )
    images = _as_images(images)[:max_images]
    labels = ids["labels"][: len(images)]
    preds = ids["predictions"][: len(images)] if "predictions" in ids else None
    plt = _pyplot()
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)

    def name(i):
        return class_names[int(i)] if class_names is not None else str(int(i))

    for idx, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if idx >= len(images):
            continue
        image = images[idx]
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
        if preds is None:
            ax.set_title(name(labels[idx]), fontsize=8)
        else:
            wrong = int(preds[idx]) != int(labels[idx])
            ax.set_title(
                f"{name(preds[idx])} (true {name(labels[idx])})",
                fontsize=8,
                color="red" if wrong else "black",
            )
    fig.tight_layout()
    return _save(fig, path)


def plot_samples(
    images: Any,
    path: str,
    *,
    columns: int | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    scale: int = 4,
) -> str:
    """A grid of images (a generator's samples) as one PNG, ``columns`` to a row (default:
    a square), each pixel drawn as ``scale x scale`` pixels with a one-pixel gap, on the
    fixed scale ``value_range`` so that grids of different epochs compare; returns
    ``path``. One image write, no figure: cheap enough to run after every epoch.

    Args:
      images: ``(N, H, W, 1 or 3)``.
      path: the PNG file to write.
      columns: images per row.
      value_range: the values shown as black and white.
      scale: the magnification of each image.

    Returns:
      ``path``.

    Example:
        >>> import os, tempfile, numpy as np
        >>> path = plot_samples(np.zeros((6, 8, 8, 1)), os.path.join(tempfile.mkdtemp(), "s.png"))
        >>> os.path.getsize(path) > 0
        True
    """
    import matplotlib.image

    where = "plot_samples"
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"{where}: expected images (N, H, W, 1 or 3), got {images.shape}")
    if len(images) == 0:
        raise ValueError(f"{where}: images must hold at least one image, got 0 {images.shape}")
    if columns is not None:
        count(where, "columns", columns)
    scale = count(where, "scale", scale)
    low, high = _value_range(where, value_range)
    path = _path(where, path)
    images = np.clip((images - low) / (high - low), 0.0, 1.0)
    images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    n, h, w, c = images.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    mosaic = np.ones(((h + 1) * rows + 1, (w + 1) * cols + 1, c), np.float32)
    for i, image in enumerate(images):
        top, left = 1 + (i // cols) * (h + 1), 1 + (i % cols) * (w + 1)
        mosaic[top : top + h, left : left + w] = image
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}.png"
    if c == 1:
        matplotlib.image.imsave(tmp, mosaic[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        matplotlib.image.imsave(tmp, mosaic)
    os.replace(tmp, path)
    return path


def first_conv_kernel(params: Mapping[str, Any]) -> np.ndarray | None:
    """The first 4-D ``kernel`` (HWIO) in the order the layers were built.

    Args:
      params: a params tree of nested mappings, searched depth-first in key order.

    Returns:
      That kernel as a NumPy array, or None when there is none.
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"first_conv_kernel: params must be a dict, got {type(params).__name__}")
    for key, value in params.items():
        if isinstance(value, Mapping):
            found = first_conv_kernel(value)
            if found is not None:
                return found
        elif key == "kernel" and np.ndim(value) == 4:
            return np.asarray(value)
    return None


def plot_filters(kernel_or_params: Any, path: str, *, max_filters: int = 64) -> str:
    """The first convolution's filters as small images, one per output channel.

    Takes an HWIO kernel or a params tree (its :func:`first_conv_kernel`). Filters over
    three input channels are shown in colour, others as the mean over input channels.

    Args:
      kernel_or_params: a kernel ``(H, W, I, O)`` or a params tree.
      path: the PNG file to write (its folder is created).
      max_filters: the most output channels drawn.

    Returns:
      ``path``.

    Raises:
      ValueError: when no 4-D kernel is given or found.
    """
    max_filters = count("plot_filters", "max_filters", max_filters)
    path = _path("plot_filters", path)
    plt = _pyplot()
    kernel = (
        first_conv_kernel(kernel_or_params)
        if isinstance(kernel_or_params, Mapping)
        else np.asarray(kernel_or_params)
    )
    if kernel is None or kernel.ndim != 4:
        raise ValueError("plot_filters: expected an HWIO kernel or params with a 4-D 'kernel'")
    filters = np.moveaxis(kernel, -1, 0)[:max_filters]  # (O, H, W, I)
    if filters.shape[-1] != 3:
        filters = filters.mean(axis=-1, keepdims=True)
    cols = math.ceil(math.sqrt(len(filters)))
    rows = math.ceil(len(filters) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows), squeeze=False)
    for idx, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if idx < len(filters):
            f = filters[idx]
            low, high = f.min(), f.max()
            f = (f - low) / (high - low) if high > low else np.zeros_like(f)
            ax.imshow(f[..., 0] if f.shape[-1] == 1 else f, cmap="gray")
    fig.suptitle(f"first-layer filters {tuple(kernel.shape)} (HWIO)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
