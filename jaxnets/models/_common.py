"""Pieces the image models share: the input check, conv-BN-ReLU units and the head."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Collection, Iterable
from typing import Any

import jax

from jaxnets.activations import Relu
from jaxnets.core import Layer, layer_error, serial, stateless
from jaxnets.core.arguments import count, flag
from jaxnets.layers import BatchNorm, Conv, Dense, GlobalAvgPool, GlobalMaxPool

#: He et al.'s initialisation as PyTorch's ``kaiming_normal_(mode="fan_out")`` draws it.
TORCH_KAIMING = jax.nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def input_check(model: str, min_size: int, name: str = "input") -> Layer:
    """An identity layer whose init checks for ``(batch, height, width, channels)`` inputs
    of at least ``min_size`` pixels a side, with an error that names ``model``."""

    def check(spec):
        shape = tuple(getattr(spec, "shape", ()))
        if len(shape) != 4:
            raise layer_error(
                "InputCheck",
                f"{model} expects images (batch, height, width, channels) of rank 4, got "
                f"{f'shape {shape}' if shape else type(spec).__name__}",
            )
        if min(shape[1:3]) < min_size:
            raise layer_error(
                "InputCheck",
                f"the input is {shape[1]}x{shape[2]} pixels (shape {shape}) but {model} "
                f"needs at least {min_size}x{min_size}",
            )

    return stateless("InputCheck", lambda x: x, name=name, check=check)


def check_pooling(model: str, pooling: str | None) -> None:
    """Raise unless ``pooling`` is None, "avg" or "max" (TypeError for a non-string)."""
    if pooling in (None, "avg", "max"):
        return
    message = f"{model}: pooling must be None, 'avg' or 'max', got {pooling!r}"
    raise (ValueError if isinstance(pooling, str) else TypeError)(message)


def check_top(model: str, num_classes: Any, include_top: Any, pooling: Any) -> int:
    """Check the arguments of a Keras-style head; returns ``num_classes`` as an int."""
    flag(model, "include_top", include_top)
    check_pooling(model, pooling)
    return count(model, "num_classes", num_classes)


def check_depth(model: str, depth: Any, layouts: Collection[int]) -> int:
    """``depth`` as an int, one of ``layouts``' keys (a TypeError for a non-int)."""
    try:
        depth = count(model, "depth", depth)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{error}; depth must be one of {sorted(layouts)}") from None
    if depth not in layouts:
        raise ValueError(f"{model}: depth must be one of {sorted(layouts)}, got {depth!r}")
    return depth


def widths(model: str, what: str, values: Any, *, empty: bool = True) -> tuple[int, ...]:
    """A sequence of layer widths (positive ints), e.g. an MLP's ``hidden``.

    Args:
      model: the model, the start of the message.
      what: the argument's name.
      values: what came: a tuple or list of ints (not a single int).
      empty: whether no width at all is allowed.

    Returns:
      The widths as a tuple of Python ints.
    """
    if isinstance(values, (numbers.Number, str)) or not isinstance(values, Iterable):
        raise TypeError(
            f"{model}: {what} must be a tuple of positive ints (one width per layer), got "
            f"{values!r}; for one layer write ({values!r},)"
        )
    values = tuple(values)
    if not values and not empty:
        raise ValueError(f"{model}: {what} must hold at least one width, got ()")
    return tuple(count(model, f"{what}[{i}]", v) for i, v in enumerate(values))


def head(
    num_classes: int, include_top: bool, pooling: str | None, model: str
) -> list[tuple[str, Layer]]:
    """The Keras-style top: global average pooling and ``logits`` when ``include_top``,
    else the global pooling that ``pooling`` names (``None`` keeps the feature map)."""
    num_classes = check_top(model, num_classes, include_top, pooling)
    if include_top:
        return [("pool", GlobalAvgPool()), ("logits", Dense(num_classes))]
    if pooling == "avg":
        return [("pool", GlobalAvgPool())]
    if pooling == "max":
        return [("pool", GlobalMaxPool())]
    return []


def conv_bn(
    suffix: str,
    features: int,
    kernel_size,
    strides=1,
    padding="SAME",
    *,
    use_bias: bool,
    momentum: float,
    epsilon: float,
    use_scale: bool = True,
    relu: bool = True,
    kernel_init: Callable | None = None,
) -> list[tuple[str, Layer]]:
    """``conv{suffix}`` then ``bn{suffix}`` (then ``relu{suffix}``), to splice into a serial."""
    units = [
        (
            f"conv{suffix}",
            Conv(
                features,
                kernel_size,
                strides,
                padding,
                use_bias=use_bias,
                kernel_init=kernel_init,
            ),
        ),
        (f"bn{suffix}", BatchNorm(momentum, epsilon, use_scale=use_scale)),
    ]
    if relu:
        units.append((f"relu{suffix}", Relu()))
    return units


def model_serial(model: str, min_size: int, *layers: tuple[str, Layer]) -> Layer:
    """The whole network: the input check, then ``layers``, named ``model``."""
    return serial(input_check(model, min_size), *layers, name=model)
