"""Argument checks the layer constructors share, beyond :mod:`jaxnets.core.arguments`:
initialisers, parameter dtypes, optional flags, and the common keyword arguments."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxnets.activations import check_name, resolve
from jaxnets.core.arguments import flag

__all__ = ["check_name", "common", "initializer", "optional_flag", "param_dtype", "resolve"]


def initializer(where: str, name: str, value: Any, *, optional: bool = True) -> Any:
    """An initialiser argument: a callable ``(key, shape, dtype) -> array`` (or None).

    Args:
      where: the layer, the start of the message.
      name: the argument's name.
      value: what came.
      optional: None is accepted (the layer's default).

    Returns:
      ``value``.

    Raises:
      TypeError: ``value`` is not callable (nor None when ``optional``).
    """
    if value is None and optional:
        return None
    if not callable(value):
        expected = "an initializer function (key, shape, dtype)" + (" or None" if optional else "")
        raise TypeError(
            f"{where}: {name} must be {expected}, e.g. jax.nn.initializers.glorot_uniform(), "
            f"got {value!r} (a {type(value).__name__})"
        )
    return value


def param_dtype(where: str, value: Any) -> Any:
    """The ``param_dtype`` argument: a floating-point dtype.

    Args:
      where: the layer, the start of the message.
      value: what came (``jnp.float32``, ``"bfloat16"``...).

    Returns:
      ``value``.

    Raises:
      TypeError: ``value`` is not a floating-point dtype.
    """
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        dtype = None
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"{where}: param_dtype must be a floating-point dtype (jnp.float32, jnp.bfloat16), "
            f"got {value!r}"
        )
    return value


def optional_flag(where: str, name: str, value: Any) -> bool | None:
    """True, False or None (a choice left to the layer).

    Args:
      where: the layer, the start of the message.
      name: the argument's name.
      value: what came.

    Returns:
      ``value`` as a bool, or None.

    Raises:
      TypeError: ``value`` is neither a bool nor None.
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{where}: {name} must be True, False or None, got {value!r}")


def common(where: str, *, name: Any = None, dtype: Any = jnp.float32, **flags: Any) -> None:
    """Check the keyword arguments most layers share: ``name``, ``param_dtype`` and flags.

    Args:
      where: the layer, the start of the messages.
      name: the layer's ``name`` argument.
      dtype: its ``param_dtype`` argument.
      **flags: boolean arguments by name (``use_bias=True``).
    """
    check_name(where, name)
    param_dtype(where, dtype)
    for key, value in flags.items():
        flag(where, key, value)
