"""Checks of constructor and function arguments, with one way of saying what is wrong.

Every message reads ``"<where>: <name> must be <expected>, got <value>"``: the function or
layer, the argument, what it accepts and what came. A wrong type raises ``TypeError``, a
value out of range or not among the choices ``ValueError``. NumPy scalars are accepted
where Python numbers are; a bool is never a count or a number.

Example:
    >>> from jaxnets.core.arguments import count
    >>> count("Dense", "features", 3)
    3
    >>> count("Dense", "features", True)
    Traceback (most recent call last):
    TypeError: Dense: features must be a positive int, got True (a bool)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np


def received(value: Any) -> str:
    """How a received value is shown in a message: its repr (cut at 60 characters), and its
    type where the repr hides it.

    Args:
      value: what came.

    Returns:
      The text, e.g. ``"True (a bool)"`` or ``"'adam' (a str)"``.
    """
    if isinstance(value, bool):
        return f"{value!r} (a bool)"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(value, numbers.Number) or value is None:
        return text
    return f"{text} (a {type(value).__name__})"


def _int_phrase(minimum: int) -> str:
    return {1: "a positive int", 0: "an int >= 0"}.get(minimum, f"an int >= {minimum}")


def count(where: str, name: str, value: Any, *, minimum: int = 1) -> int:
    """An integer argument of at least ``minimum`` (a size, a count, a number of steps).

    Args:
      where: the function or layer, the start of the message.
      name: the argument's name.
      value: what came (Python or NumPy integer; not a bool, not a float).
      minimum: the smallest value accepted.

    Returns:
      ``value`` as a Python int.

    Raises:
      TypeError: ``value`` is not an integer.
      ValueError: ``value`` is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: {name} must be {_int_phrase(minimum)}, got {received(value)}")
    if value < minimum:
        raise ValueError(f"{where}: {name} must be {_int_phrase(minimum)}, got {received(value)}")
    return int(value)


def number(
    where: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real argument, optionally within bounds (a rate, a probability, an epsilon).

    Args:
      where: the function or layer, the start of the message.
      name: the argument's name.
      value: what came (Python or NumPy real; not a bool, not NaN or infinite).
      low: the lower bound, or None.
      high: the upper bound, or None.
      low_open: ``low`` itself is refused.
      high_open: ``high`` itself is refused.

    Returns:
      ``value`` as a Python float.

    Raises:
      TypeError: ``value`` is not a real number.
      ValueError: ``value`` is not finite or out of bounds.
    """
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    expected = "a finite number" + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be {expected}, got {received(value)}")
    v = float(value)
    below = low is not None and (v <= low if low_open else v < low)
    above = high is not None and (v >= high if high_open else v > high)
    if not math.isfinite(v) or below or above:
        raise ValueError(f"{where}: {name} must be {expected}, got {received(value)}")
    return v


def flag(where: str, name: str, value: Any) -> bool:
    """A boolean argument: ``True`` or ``False`` (or a NumPy bool), not a string or a number.

    Args:
      where: the function or layer, the start of the message.
      name: the argument's name.
      value: what came.

    Returns:
      ``value`` as a Python bool.

    Raises:
      TypeError: ``value`` is not a bool.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{where}: {name} must be True or False, got {received(value)}")


def choice(where: str, name: str, value: Any, choices: Iterable[str]) -> str:
    """A string argument that must be one of ``choices`` (listed in the message).

    Args:
      where: the function or layer, the start of the message.
      name: the argument's name.
      value: what came.
      choices: the accepted strings.

    Returns:
      ``value``.

    Raises:
      TypeError: ``value`` is not a string.
      ValueError: ``value`` is not one of ``choices``.
    """
    options = list(choices)
    listed = ", ".join(repr(c) for c in options)
    if not isinstance(value, str):
        raise TypeError(f"{where}: {name} must be one of {listed}, got {received(value)}")
    if value not in options:
        raise ValueError(f"{where}: {name} must be one of {listed}, got {value!r}")
    return value
