"""Value types of the ``jaxnets`` options: each parses one option's text or says why not.

They raise ``argparse.ArgumentTypeError``, so argparse reports them on one line as
``jaxnets train: error: argument --epochs: must be a positive int, got '0'`` (exit 2).
NaN and infinities are never accepted.

Example:
    >>> positive_int("3")
    3
    >>> positive_int("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a positive int, got '0'
"""

from __future__ import annotations

import argparse
import math


def _int(text: str, expected: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None


def _float(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An int >= 1 (epochs, a batch size, a patience, a count of checkpoints).

    Args:
      text: the option's text.

    Returns:
      The int.
    """
    value = _int(text, "a positive int")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text!r}")
    return value


def natural_int(text: str) -> int:
    """An int >= 0 (a seed).

    Args:
      text: the option's text.

    Returns:
      The int.
    """
    value = _int(text, "an int >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an int >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate, a clipping norm, a loss scale).

    Args:
      text: the option's text.

    Returns:
      The float.
    """
    value = _float(text, "a finite number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def natural_float(text: str) -> float:
    """A finite number >= 0 (weight decay, warm-up epochs).

    Args:
      text: the option's text.

    Returns:
      The float.
    """
    value = _float(text, "a finite number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1) (the share of the training data held out for validation).

    Args:
      text: the option's text.

    Returns:
      The float.
    """
    expected = "a number >= 0 and < 1 (a share of the training data)"
    value = _float(text, expected)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")
    return value


def resize(text: str) -> str | int:
    """``auto`` or an image size in pixels, >= 0 (0: never resize).

    Args:
      text: the option's text.

    Returns:
      ``"auto"`` or the int.
    """
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or an int >= 0, got {text!r}")
    return value


def shape(text: str) -> tuple[int, ...]:
    """An input shape without the batch, as comma-separated positive ints (``28,28,1``).

    Args:
      text: the option's text.

    Returns:
      The shape.
    """
    parts = [p.strip() for p in text.split(",")]
    if parts and parts[-1] == "":
        parts = parts[:-1]  # "8," is the 1-D shape (8,)
    expected = "positive ints separated by commas, e.g. 28,28,1"
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")
    return tuple(int(p) for p in parts)
