"""Keras applications' input scaling (``caffe``, ``tf``, ``torch``) and ImageNet labels.

Which scaling each model's weights were trained with (``keras.applications.<model>.
preprocess_input``): ResNet-50/101/152 (v1) and VGG-16/19 use ``caffe``, Inception v3
and Xception ``tf``; torchvision's ImageNet weights (and Keras's DenseNet) ``torch``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core.arguments import choice, count
from jaxnets.core.specs import along_last

#: The preprocessing mode of each model's ImageNet weights.
MODES = {
    "resnet50": "caffe",
    "resnet101": "caffe",
    "resnet152": "caffe",
    "vgg16": "caffe",
    "vgg19": "caffe",
    "inception_v3": "tf",
    "xception": "tf",
    "torchvision": "torch",
}
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def preprocess_input(x: Any, mode: str) -> jax.Array:
    """Scale RGB images in ``[0, 255]`` as a Keras application's weights expect.

    - ``"caffe"``: RGB to BGR, then subtract the ImageNet mean of each channel
      (103.939, 116.779, 123.68 in BGR order); no scaling.
    - ``"tf"``: ``x / 127.5 - 1``, into ``[-1, 1]``.
    - ``"torch"``: ``x / 255``, then subtract (0.485, 0.456, 0.406) and divide by
      (0.229, 0.224, 0.225) per RGB channel.

    Args:
      x: images, channels last: ``(..., height, width, 3)`` (ints are cast to float32).
      mode: ``"caffe"``, ``"tf"`` or ``"torch"``, or a model name from :data:`MODES`
        (``"resnet50"``, ``"inception_v3"``...), which means that model's mode.

    Returns:
      The scaled images, float (float32 unless ``x`` is another float type).

    Example:
        >>> import numpy as np
        >>> x = np.full((1, 1, 1, 3), 255.0, np.float32)
        >>> preprocess_input(x, "tf").ravel().tolist()
        [1.0, 1.0, 1.0]
        >>> [round(float(v), 3) for v in preprocess_input(x, "resnet50").ravel()]
        [151.061, 138.221, 131.32]
    """
    mode = MODES.get(mode, mode) if isinstance(mode, str) else mode
    choice("preprocess_input", "mode", mode, ("caffe", "tf", "torch", *MODES))
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    if mode != "tf" and (x.ndim == 0 or x.shape[-1] != 3):
        raise ValueError(
            f"preprocess_input: mode {mode!r} needs RGB images with 3 channels last, "
            f"got shape {tuple(x.shape)}"
        )
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        mean = along_last(jnp.asarray(_TORCH_MEAN, x.dtype), x.ndim)
        std = along_last(jnp.asarray(_TORCH_STD, x.dtype), x.ndim)
        return (x / 255.0 - mean) / std
    return x[..., ::-1] - along_last(jnp.asarray(_CAFFE_MEAN_BGR, x.dtype), x.ndim)


def decode_predictions(
    preds: Any, class_index_path: str | os.PathLike, top: int = 5
) -> list[list[tuple[str, str, float]]]:
    """The ``top`` classes of each row of ImageNet scores, with their WordNet ids and names.

    Args:
      preds: scores ``(batch, classes)``: probabilities or logits (the zoo models output
        logits; ``jax.nn.softmax`` turns them into Keras's probabilities).
      class_index_path: the standard ``imagenet_class_index.json``
        (``{"0": ["n01440764", "tench"], ...}``), one entry per class; nothing is
        downloaded.
      top: how many classes per row.

    Returns:
      One list per row of ``(wnid, name, score)``, the highest score first.

    Raises:
      FileNotFoundError: there is no such file.
      ValueError: the file is not a class index, or ``preds`` has another number of
        classes.

    Example:
        >>> import json, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "index.json")
        >>> with open(path, "w") as f:
        ...     json.dump({"0": ["n0", "cat"], "1": ["n1", "dog"]}, f)
        >>> decode_predictions([[0.25, 0.75]], path, top=1)
        [[('n1', 'dog', 0.75)]]
    """
    top = count("decode_predictions", "top", top)
    where = repr(os.fspath(class_index_path))
    if not os.path.exists(class_index_path):
        raise FileNotFoundError(f"decode_predictions: no such file {where}")
    try:
        with open(class_index_path, encoding="utf8") as f:
            index = json.load(f)
        classes = [tuple(index[str(i)]) for i in range(len(index))]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            f"decode_predictions: {where} is not a class index like imagenet_class_index.json "
            f'({{"0": ["n01440764", "tench"], ...}}): {error}'
        ) from error
    if not all(len(c) == 2 for c in classes):
        raise ValueError(f"decode_predictions: {where} entries must be [wnid, name] pairs")
    scores = np.asarray(preds)
    if scores.ndim != 2 or scores.shape[1] != len(classes):
        raise ValueError(
            f"decode_predictions: preds must have shape (batch, {len(classes)}) for the "
            f"{len(classes)} classes of {where}, got shape {scores.shape}"
        )
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    return [
        [(str(classes[i][0]), str(classes[i][1]), float(row[i])) for i in idx]
        for row, idx in zip(scores, order, strict=True)
    ]
