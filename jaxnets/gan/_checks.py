"""Argument checks of the GAN helpers: keys, ranges and the common numbers."""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from jaxnets.core.arguments import count, number


def check_key(where: str, key: Any) -> Any:
    """Raise a TypeError unless ``key`` is a JAX PRNG key (``jax.random.key(seed)``).

    Args:
      where: the function, the start of the message.
      key: what came.

    Returns:
      ``key``.
    """
    dtype = getattr(key, "dtype", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    raw = dtype == np.uint32 and tuple(getattr(key, "shape", ()))[-1:] == (2,)
    if not (typed or raw):
        raise TypeError(
            f"{where}: key must be a PRNG key such as jax.random.key(0), got {key!r:.60} "
            f"(a {type(key).__name__})"
        )
    return key


def check_range(where: str, name: str, value_range: Any) -> tuple[float, float]:
    """A ``(low, high)`` pair of finite numbers with ``low < high`` (``number`` refuses
    non-finite ones).

    Args:
      where: the function, the start of the message.
      name: the argument's name.
      value_range: what came.

    Returns:
      ``(low, high)`` as floats.
    """
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
        raise TypeError(f"{where}: {name} must be a pair (low, high), got {value_range!r}")
    low, high = (number(where, name, v) for v in value_range)
    if not low < high:
        raise ValueError(
            f"{where}: {name} must be (low, high) with low < high, got {tuple(value_range)}"
        )
    return low, high


def check_training(where: str, **values: Any) -> None:
    """Check the usual training numbers by name: counts (``epochs``, ``batch_size``...),
    ``seed`` (an int >= 0), ``learning_rate`` (> 0), ``beta1`` in [0, 1),
    ``label_smoothing`` in [0, 1), ``weight_decay`` (>= 0) and ``directory`` (a path).

    Args:
      where: the function, the start of the messages.
      **values: the arguments to check, by name.
    """
    for name, value in values.items():
        if name == "seed":
            count(where, name, value, minimum=0)
        elif name == "learning_rate":
            number(where, name, value, low=0.0, low_open=True)
        elif name in ("beta1", "label_smoothing", "threshold"):
            number(where, name, value, low=0.0, high=1.0, high_open=True)
        elif name == "weight_decay":
            number(where, name, value, low=0.0)
        elif name == "directory":
            if not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"{where}: directory must be a str or os.PathLike, got {value!r}")
        else:
            count(where, name, value)
