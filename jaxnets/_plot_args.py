"""Checks of the arguments of :mod:`jaxnets.plots`: paths, class ids, class names and value
ranges, each refused with a message that names the function and the argument."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxnets.core.arguments import number


def _path(where: str, path: Any) -> str:
    """The PNG path argument: a str or os.PathLike."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"{where}: path must be a str or os.PathLike (the PNG file to write), got "
            f"{path!r:.60} (a {type(path).__name__})"
        )
    return os.fspath(path)


def _class_names(where: str, class_names: Any) -> list[str] | None:
    if class_names is None:
        return None
    if isinstance(class_names, str) or not isinstance(class_names, (Sequence, np.ndarray)):
        raise TypeError(
            f"{where}: class_names must be a list of str (one per class) or None, got "
            f"{class_names!r:.60} (a {type(class_names).__name__})"
        )
    names = list(class_names)
    if not names:
        raise ValueError(f"{where}: class_names must name at least one class, got []")
    return [str(n) for n in names]


def _class_ids(where: str, what: str, values: Any, num_classes: int | None) -> np.ndarray:
    """Class ids as an int64 vector in ``[0, num_classes)`` (or ``>= 0`` without it)."""
    ids = np.asarray(values).ravel()
    if ids.dtype == bool or not (
        np.issubdtype(ids.dtype, np.integer) or np.issubdtype(ids.dtype, np.floating)
    ):
        raise TypeError(f"{where}: {what} must be integer class ids, got dtype {ids.dtype}")
    if np.issubdtype(ids.dtype, np.floating):
        fractional = ids[~np.isfinite(ids) | (ids != np.round(ids))]
        if fractional.size:
            raise ValueError(
                f"{where}: {what} must be integer class ids, got {fractional[:5].tolist()}"
            )
    ids = ids.astype(np.int64)
    outside = ids[(ids < 0) | (ids >= (num_classes if num_classes is not None else np.inf))]
    if outside.size:
        expected = f"in [0, {num_classes})" if num_classes is not None else ">= 0"
        shown = sorted(set(outside.tolist()))[:5]
        raise ValueError(
            f"{where}: {what} must be class ids {expected}, got {outside.size} outside "
            f"(for example {shown})"
        )
    return ids


def _value_range(where: str, value_range: Any) -> tuple[float, float]:
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
        raise TypeError(f"{where}: value_range must be a pair (low, high), got {value_range!r}")
    low = number(where, "value_range[0]", value_range[0])
    high = number(where, "value_range[1]", value_range[1])
    if not low < high:
        raise ValueError(
            f"{where}: value_range must be (low, high) with low < high, got {tuple(value_range)}"
        )
    return low, high
