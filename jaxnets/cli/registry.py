"""The models and data sets the ``jaxnets`` command finds by name, built with checked options."""

from __future__ import annotations

import ast
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from jaxnets.cli.errors import option_error

if TYPE_CHECKING:
    from jaxnets.core import Layer
    from jaxnets.data import ArrayDataset

DATASETS = ("digits", "xor", "spirals", "mnist", "fashion_mnist", "cifar10")

_DIGITS = [str(i) for i in range(10)]
#: The class names of the image data sets, by label (``jaxnets export`` records them).
# fmt: off
CLASS_NAMES: dict[str, list[str]] = {
    "digits": _DIGITS,
    "mnist": _DIGITS,
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"],
}
# fmt: on


class Splits(NamedTuple):
    """A data set's parts: ``val`` is None unless the data set has its own validation set."""

    train: ArrayDataset
    val: ArrayDataset | None
    test: ArrayDataset


def _returns_layer(fn: Callable) -> bool:
    """Whether ``fn`` is annotated to return a :class:`~jaxnets.core.Layer`."""
    from jaxnets.core import Layer

    try:
        returned = typing.get_type_hints(fn).get("return")
    except Exception:  # annotations naming what the module only imports for type checking
        returned = inspect.signature(fn).return_annotation
    return returned is Layer or returned == "Layer"


def model_registry() -> dict[str, Callable]:
    """Every model constructor exported by :mod:`jaxnets.models`, by name.

    Only the functions that return a :class:`~jaxnets.core.Layer` count: helpers such
    as ``sample`` or ``train_char_lm`` are left out.

    Returns:
      ``{name: constructor}``, sorted by name.
    """
    from jaxnets import models

    names = getattr(models, "__all__", dir(models))
    found = {n: getattr(models, n, None) for n in names if not n.startswith("_")}
    return {n: fn for n, fn in sorted(found.items()) if callable(fn) and _returns_layer(fn)}


def _literal(name: str, item: str, text: str) -> Any:
    """The value of ``NAME=VALUE``: a Python literal, or a bare word such as ``relu``."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if text.isidentifier():
            return text
    raise option_error(
        "--model-arg",
        f"{item!r}: the value of {name} must be a Python literal (a number, a string, a "
        f"tuple such as (64,64), True, None) or a bare word such as relu",
    )


def parse_model_args(fn_name: str, fn: Callable, items: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` items as keyword arguments of ``fn``, each name one ``fn`` takes.

    Args:
      fn_name: the model's name, for messages.
      fn: the model constructor.
      items: the ``--model-arg`` values.

    Returns:
      The keyword arguments.
    """
    params = inspect.signature(fn).parameters
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    kwargs: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise option_error("--model-arg", f"expects NAME=VALUE, got {item!r}")
        if name in kwargs:
            raise option_error("--model-arg", f"{name} is given twice ({item!r} the second time)")
        if not open_ended and name not in params:
            raise option_error(
                "--model-arg",
                f"{item!r}: {fn_name} takes no argument {name!r}; it takes "
                f"{', '.join(named) or 'none'}",
            )
        kwargs[name] = _literal(name, item, text.strip())
    return kwargs


def build_model(name: str, num_classes: int, model_args: Sequence[str] = ()) -> Layer:
    """``jaxnets.models.<name>(num_classes=..., **model_args)``, with one-line errors.

    Args:
      name: a constructor of :func:`model_registry`.
      num_classes: passed as ``num_classes=`` when the constructor takes it (and
        ``model_args`` does not set it; if it does, to no fewer classes than the data has).
      model_args: ``NAME=VALUE`` items, each value a Python literal or a bare word.

    Returns:
      The model.

    Raises:
      UsageError: for an unknown model, a malformed or unknown ``NAME=VALUE``, or
        arguments the constructor refuses.
    """
    registry = model_registry()
    if name not in registry:
        raise option_error(
            "--model", f"unknown model {name!r}; choose one of {', '.join(registry)}"
        )
    fn = registry[name]
    kwargs = parse_model_args(name, fn, model_args)
    if "num_classes" in inspect.signature(fn).parameters:
        given = kwargs.setdefault("num_classes", num_classes)
        if isinstance(given, int) and not isinstance(given, bool) and 0 < given < num_classes:
            raise option_error(
                "--model-arg",
                f"num_classes={given}, but the labels of the data go up to {num_classes - 1} "
                f"({num_classes} classes); drop num_classes=",
            )
    try:
        return fn(**kwargs)
    except (TypeError, ValueError) as e:
        call = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise option_error("--model-arg", f"cannot build {name}({call}): {e}") from None


def load_dataset(name: str, data_dir: str | None = None) -> Splits:
    """The parts of a data set in :data:`DATASETS`.

    Args:
      name: one of :data:`DATASETS`.
      data_dir: the folder of the MNIST IDX or CIFAR-10 batch files (those data sets only).

    Returns:
      ``Splits(train, val, test)``; ``val`` is None for every data set built in today
      (the command then holds out ``--val-split`` of ``train``).

    Raises:
      UsageError: for an unknown name, a missing ``data_dir`` or files it cannot read.
    """
    from jaxnets import data

    if name == "digits":
        train, test = data.load_digits()
        return Splits(train, None, test)
    if name == "xor":
        return Splits(data.xor(repeat=64), None, data.xor())
    if name == "spirals":
        return Splits(data.two_spirals(400, seed=0), None, data.two_spirals(200, seed=1))
    loaders = {
        "mnist": data.load_mnist,
        "fashion_mnist": data.load_fashion_mnist,
        "cifar10": data.load_cifar10,
    }
    if name not in loaders:
        raise option_error("--dataset", f"unknown data set {name!r}; choose one of {DATASETS}")
    if data_dir is None:
        raise option_error("--data-dir", f"--dataset {name} reads its files from --data-dir DIR")
    try:
        train, test = loaders[name](data_dir)
    except (OSError, ValueError) as e:
        raise option_error("--data-dir", f"cannot read --dataset {name} from it: {e}") from None
    return Splits(train, None, test)


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
        raise option_error(
            "--resize", f"{size} needs images (N, H, W, C), and the inputs are {x.shape}"
        )
    resized = jax.image.resize(x, (x.shape[0], size, size, x.shape[3]), "bilinear")
    return ArrayDataset(np.asarray(resized, np.float32), dataset.labels)


def model_error(model: Layer, input_shape: tuple[int, ...]) -> str | None:
    """Why ``model`` cannot take inputs of ``input_shape`` (batch included), or None.

    Args:
      model: the model.
      input_shape: the input's shape with the batch.

    Returns:
      The model's own message, or None when it takes them.
    """
    from jaxnets.core import shape_tree

    try:
        shape_tree(model, input_shape)
    except (TypeError, ValueError) as e:  # LayerError and LayerTypeError among them
        return str(e)
    return None
