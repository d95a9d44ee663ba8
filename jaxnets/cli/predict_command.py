"""``jaxnets predict``: classify image files with an export of ``jaxnets export``.

Only the export is read (:func:`jaxnets.export.load`): the model is not rebuilt. Each
image is decoded with Pillow, converted to grey or RGB as the export's input has one or
three channels, resized bilinearly to its height and width (``jax.image.resize``, as
``jaxnets train`` resizes a data set) and scaled from 0..255 to the range the run's images
had. One line per file: the path, then the top classes and their softmax scores.
Nothing is written.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from jaxnets.cli.errors import option_error

#: The files taken from a folder (a file named on the command line may be any image).
SUFFIXES = (".png", ".jpg", ".jpeg")


def image_files(items: Sequence[str]) -> list[str]:
    """The files of ``items``: files as given, folders as their images (sorted by name).

    Args:
      items: paths of files or folders.

    Returns:
      The file paths, in order.
    """
    files: list[str] = []
    for item in items:
        if os.path.isdir(item):
            found = sorted(
                os.path.join(item, n)
                for n in os.listdir(item)
                if n.lower().endswith(SUFFIXES) and os.path.isfile(os.path.join(item, n))
            )
            if not found:
                shown = ", ".join(SUFFIXES)
                raise option_error("IMAGES", f"the folder {item!r} holds no image ({shown})")
            files += found
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise option_error("IMAGES", f"no file or folder {item!r}")
    return files


def read_image(path: str, shape: tuple[int, int, int], low: float, high: float) -> Any:
    """The image in ``path`` as the export's input: ``(H, W, C)`` float32 in ``[low, high]``.

    Args:
      path: an image file Pillow decodes (PNG, JPEG, ...).
      shape: the export's ``(H, W, C)``, C 1 (grey) or 3 (RGB).
      low: the value of a black pixel.
      high: the value of a white one.

    Returns:
      The array.
    """
    import jax
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    channels = shape[2]
    try:
        with Image.open(path) as image:
            converted = image.convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise option_error("IMAGES", f"cannot read {path!r} as an image: {e}") from None
    pixels = np.asarray(converted, np.float32).reshape(converted.height, converted.width, -1)
    if pixels.shape != shape:  # as jaxnets train resized the run's images
        pixels = np.asarray(jax.image.resize(pixels, shape, "bilinear"), np.float32)
    return low + (high - low) * pixels / 255.0


def _image_input(model: Any, path: str) -> tuple[tuple[int, int, int], float, float]:
    """The export's ``(H, W, C)`` and pixel range, refused for inputs that are not images."""
    shape = model.input_shape
    ranged = model.metadata.get("image_range")
    if len(shape) != 4 or shape[-1] not in (1, 3) or ranged is None:
        shown = "(" + ", ".join("batch" if d is None else str(d) for d in shape) + ")"
        raise option_error(
            "MODEL",
            f"{path} takes inputs of shape {shown}, not images (batch, height, width, 1 or 3 "
            f"channels) from an image data set",
        )
    if not str(model.input_dtype).startswith(("float", "bfloat")):
        raise option_error("MODEL", f"{path} takes {model.input_dtype} inputs, not images")
    return (shape[1], shape[2], shape[3]), float(ranged[0]), float(ranged[1])


def _scores(model: Any, images: Any, batch_size: int) -> Any:
    """Softmax scores of ``images``, in batches of the export's size (the last padded)."""
    import jax
    import numpy as np

    fixed = model.input_shape[0]
    size = fixed or batch_size
    parts = []
    for start in range(0, len(images), size):
        chunk = images[start : start + size]
        n = len(chunk)
        if fixed is not None and n < fixed:
            chunk = np.concatenate([chunk, np.zeros((fixed - n, *chunk.shape[1:]), chunk.dtype)])
        logits = np.asarray(model(chunk), np.float32)[:n]
        parts.append(np.asarray(jax.nn.softmax(logits, axis=-1)))
    return np.concatenate(parts)


def cmd_predict(args: argparse.Namespace) -> int:
    """Print the top classes of each image.

    Args:
      args: the options of ``jaxnets predict``.

    Returns:
      The exit status, 0.

    Raises:
      UsageError: for a file that is not an export (or is damaged), an export whose
        inputs are not images, a missing or unreadable image, or ``--top`` larger than
        the number of classes.
    """
    import numpy as np

    from jaxnets.export import load

    if not os.path.isfile(args.model):
        raise option_error("MODEL", f"no file {args.model!r}; give a file of jaxnets export")
    try:
        model = load(args.model)
    except ValueError as e:
        raise option_error("MODEL", str(e)) from None
    shape, low, high = _image_input(model, args.model)
    files = image_files(args.images)
    classes = model.header["outputs"][0]["shape"][-1]
    if args.top > classes:
        raise option_error("--top", f"{args.top} is more than the {classes} classes of the export")
    images = np.stack([read_image(f, shape, low, high) for f in files])
    scores = _scores(model, images, args.batch_size)
    names = model.class_names or [str(i) for i in range(classes)]
    for path, row in zip(files, scores, strict=True):
        best = np.argsort(-row, kind="stable")[: args.top]
        print(f"{path}  " + "  ".join(f"{names[i]} {row[i]:.4f}" for i in best))
    return 0
