"""The models and data sets the ``jaxnets`` command finds by name."""

from __future__ import annotations

import argparse
import ast
import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jaxnets.core import Layer
    from jaxnets.data import ArrayDataset

DATASETS = ("digits", "xor", "spirals", "mnist", "fashion_mnist", "cifar10")


def model_registry() -> dict[str, Callable]:
    """Every model constructor exported by :mod:`jaxnets.models`, by name.

    Returns:
      ``{name: constructor}`` for the public callables of :mod:`jaxnets.models`.
    """
    from jaxnets import models

    return {
        name: getattr(models, name)
        for name in getattr(models, "__all__", dir(models))
        if callable(getattr(models, name, None)) and not name.startswith("_")
    }


def _parse_model_args(items: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` items as keyword arguments, each value a Python literal or a bare word."""
    kwargs: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"jaxnets: --model-arg expects NAME=VALUE, got {item!r}")
        try:
            kwargs[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            kwargs[name] = text  # a bare word such as relu
    return kwargs


def build_model(name: str, num_classes: int, model_args: Sequence[str] = ()) -> Layer:
    """``jaxnets.models.<name>(num_classes=..., **model_args)`` with clear errors.

    Args:
      name: a constructor of :func:`model_registry`.
      num_classes: passed as ``num_classes=`` when the constructor takes it (and
        ``model_args`` does not set it).
      model_args: ``NAME=VALUE`` items, each value a Python literal or a bare word.

    Returns:
      The model.
    """
    registry = model_registry()
    if name not in registry:
        raise SystemExit(f"jaxnets: unknown model {name!r}; choose one of {sorted(registry)}")
    kwargs = _parse_model_args(model_args)
    fn = registry[name]
    if "num_classes" in inspect.signature(fn).parameters:
        kwargs.setdefault("num_classes", num_classes)
    try:
        return fn(**kwargs)
    except TypeError as e:
        raise SystemExit(f"jaxnets: cannot build {name} with {kwargs}: {e}") from e


def load_dataset(name: str, data_dir: str | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """``(train, test)`` ArrayDatasets of a data set in :data:`DATASETS`.

    Args:
      name: one of :data:`DATASETS`.
      data_dir: the folder of the MNIST IDX or CIFAR-10 batch files (those data sets only).

    Returns:
      The train and test sets.
    """
    from jaxnets import data

    if name == "digits":
        return data.load_digits()
    if name == "xor":
        return data.xor(repeat=64), data.xor()
    if name == "spirals":
        return data.two_spirals(400, seed=0), data.two_spirals(200, seed=1)
    loaders = {
        "mnist": data.load_mnist,
        "fashion_mnist": data.load_fashion_mnist,
        "cifar10": data.load_cifar10,
    }
    if name not in loaders:
        raise SystemExit(f"jaxnets: unknown data set {name!r}; choose one of {list(DATASETS)}")
    if data_dir is None:
        raise SystemExit(f"jaxnets: --dataset {name} reads its files from --data-dir DIR")
    return loaders[name](data_dir)


def resize_images(dataset: ArrayDataset, size: int) -> ArrayDataset:
    """``dataset`` with images ``(N, H, W, C)`` resized bilinearly to ``size`` x ``size``.

    Args:
      dataset: a data set of images ``(N, H, W, C)``.
      size: the new height and width.

    Returns:
      The resized data set, inputs float32, labels unchanged.
    """
    import jax
    import numpy as np

    from jaxnets.data import ArrayDataset

    x = dataset.inputs
    if x.ndim != 4:
        raise SystemExit(f"jaxnets: --resize needs images (N, H, W, C), got {x.shape}")
    resized = jax.image.resize(x, (x.shape[0], size, size, x.shape[3]), "bilinear")
    return ArrayDataset(np.asarray(resized, np.float32), dataset.labels)


def _fits(model: Layer, input_shape: tuple[int, ...]) -> bool:
    """Whether ``model`` takes inputs of ``input_shape``."""
    from jaxnets.core import LayerError, shape_tree

    try:
        shape_tree(model, input_shape)
    except LayerError:
        return False
    return True


def prepare(
    args: argparse.Namespace,
) -> tuple[Layer, ArrayDataset, ArrayDataset, int, int | None]:
    """The model and the data set of a command's options.

    The images are resized when ``--resize N`` asks, or when ``--resize auto`` and the
    model needs larger images.

    Args:
      args: the options ``model``, ``model_arg``, ``dataset``, ``data_dir``, ``resize``,
        ``batch_size`` and ``quiet``.

    Returns:
      ``(model, train, test, num_classes, resize)``; ``resize`` None when not resized.
    """
    train, test = load_dataset(args.dataset, args.data_dir)
    num_classes = int(max(train.labels.max(), test.labels.max())) + 1
    model = build_model(args.model, num_classes, args.model_arg)
    size = None
    if args.resize == "auto":
        native = (args.batch_size, *train.inputs.shape[1:])
        if train.inputs.ndim == 4 and not _fits(model, native):
            size = 28 if train.inputs.shape[-1] == 1 else 32
            if not args.quiet:
                print(
                    f"{args.model} does not take {train.inputs.shape[1:3]} images; resizing "
                    f"to {size}x{size} (bilinear; --resize N to choose, --resize 0 for none)"
                )
    elif int(args.resize) > 0:
        size = int(args.resize)
    if size:
        train, test = resize_images(train, size), resize_images(test, size)
    return model, train, test, num_classes, size
