"""What every Keras layer converter shares: the result type, the errors, activations.

Example:
    >>> from jaxnets.interop.keras.converted import activation
    >>> float(activation({"activation": "relu"}, "Dense")(-2.0))
    0.0
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core import Layer

Weights = Callable[[str], list[np.ndarray]]


class KerasConversionError(ValueError):
    """A Keras layer or option that :func:`jaxnets.interop.keras.load_model` cannot build."""


class Converted(NamedTuple):
    """A converted layer.

    Attributes:
      layer: the jaxnets layer.
      params: its params, from the Keras weights.
      state: its state (BatchNorm's moving statistics).
      mask: what it does with a Keras mask: "none" (takes none), "pass" (keeps it),
        "make" (outputs ``(x, mask)``), "take" (a recurrent layer: reads ``(x, mask)``
        and keeps the mask only when it returns sequences).
      keeps: for "take", whether the mask goes on (the layer returns sequences).
    """

    layer: Layer
    params: dict
    state: dict
    mask: str = "none"
    keeps: bool = False


def unsupported(cfg: dict, kind: str, what: str) -> KerasConversionError:
    """The error for a layer or option that jaxnets cannot build, naming it and its config.

    Args:
      cfg: the layer's config.
      kind: the Keras class name.
      what: what is unsupported, e.g. ``"go_backwards=True"``.

    Returns:
      The error (raise it).

    Example:
        >>> str(unsupported({"name": "x"}, "LSTM", "stateful=True"))[:45]
        "load_model: Keras layer 'x' (LSTM): stateful="
    """
    shown = {k: v for k, v in cfg.items() if not isinstance(v, dict)}
    return KerasConversionError(
        f"load_model: Keras layer {cfg.get('name')!r} ({kind}): {what} is not supported; "
        f"config {shown}"
    )


def _softmax(x):
    return jax.nn.softmax(x, axis=-1)


_ACTIVATIONS: dict[str, Callable] = {
    "linear": lambda x: x,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "sigmoid": jax.nn.sigmoid,
    "hard_sigmoid": jax.nn.hard_sigmoid,
    "tanh": jnp.tanh,
    "softmax": _softmax,
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "softplus": jax.nn.softplus,
    "softsign": jax.nn.soft_sign,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "leaky_relu": functools.partial(jax.nn.leaky_relu, negative_slope=0.2),
    "exponential": jnp.exp,
}


def activation(cfg: dict, kind: str, key: str = "activation") -> Callable:
    """The function of a Keras activation option (a name such as "relu").

    Args:
      cfg: the layer's config.
      kind: the Keras class name, for errors.
      key: the option's name.

    Returns:
      The function.

    Example:
        >>> float(activation({"activation": "relu"}, "Dense")(-1.0))
        0.0
    """
    name = cfg.get(key, "linear") or "linear"
    if not isinstance(name, str) or name not in _ACTIVATIONS:
        raise unsupported(cfg, kind, f"{key}={name!r}")
    return _ACTIVATIONS[name]


def reject(cfg: dict, kind: str, **allowed: Any) -> None:
    """Refuse options whose value is not the one jaxnets can build (absent ones pass).

    Args:
      cfg: the layer's config.
      kind: the Keras class name, for the error.
      **allowed: each option with the only value accepted (lists compare as tuples).

    Raises:
      KerasConversionError: naming the first option with another value.

    Example:
        >>> try:
        ...     reject({"name": "c", "groups": 2}, "Conv2D", groups=1)
        ... except KerasConversionError as error:
        ...     print(str(error)[:49])
        load_model: Keras layer 'c' (Conv2D): groups=2 is
    """
    for key, value in allowed.items():
        got = cfg.get(key, value)
        if isinstance(got, list):
            got = tuple(got)
        if got != value:
            raise unsupported(cfg, kind, f"{key}={cfg[key]!r}")


def arrays(weights: Weights, sub: str, count: int, cfg: dict, kind: str) -> list[jax.Array]:
    """The ``count`` weights of a layer (under ``sub``) as JAX arrays, in Keras's order.

    Args:
      weights: the weights getter.
      sub: the part of the layer holding them ("" or e.g. "cell").
      count: how many the layer's options imply.
      cfg: the layer's config, for the error.
      kind: the Keras class name, for the error.

    Returns:
      The arrays.

    Raises:
      KerasConversionError: if the file holds another number of weights.

    Example:
        >>> import numpy as np
        >>> [a.shape for a in arrays({"": [np.zeros((2, 3))]}.__getitem__, "", 1, {}, "Dense")]
        [(2, 3)]
    """
    found = weights(sub)
    if len(found) != count:
        raise KerasConversionError(
            f"load_model: Keras layer {cfg.get('name')!r} ({kind}) has {len(found)} weights "
            f"{[tuple(a.shape) for a in found]}, expected {count}"
        )
    return [jnp.asarray(a) for a in found]
