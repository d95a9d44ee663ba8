"""Activation functions by name, and the layers that apply them.

Every function here is a plain ``jax.nn`` function; :func:`get` resolves a name.

Example:
    >>> import jax.numpy as jnp, jaxnets as jn
    >>> jn.activations.get("logistic")(jnp.zeros(2))
    Array([0.5, 0.5], dtype=float32)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxnets.core import Layer, stateless


def identity(x: jax.Array) -> jax.Array:
    """The linear activation ``f(x) = x``.

    Args:
      x: the input array.

    Returns:
      ``x`` itself, unchanged.
    """
    return x


def leaky_relu(x: jax.Array, negative_slope: float = 0.01) -> jax.Array:
    """``x`` for ``x >= 0``, ``negative_slope * x`` otherwise.

    Args:
      x: the input array.
      negative_slope: the slope for negative inputs.

    Returns:
      An array of the shape and dtype of ``x``.
    """
    return jax.nn.leaky_relu(x, negative_slope)


def elu(x: jax.Array, alpha: float = 1.0) -> jax.Array:
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
      x: the input array.
      alpha: the scale of the negative part (its limit is ``-alpha``).

    Returns:
      An array of the shape and dtype of ``x``.
    """
    return jax.nn.elu(x, alpha)


def softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """Softmax over ``axis`` (the last by default).

    Args:
      x: the input array (logits).
      axis: the axis to normalise over.

    Returns:
      Probabilities of the shape of ``x``, summing to 1 along ``axis``.
    """
    return jax.nn.softmax(x, axis=axis)


def log_softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """Log-softmax over ``axis`` (the last by default).

    Args:
      x: the input array (logits).
      axis: the axis to normalise over.

    Returns:
      Log-probabilities of the shape of ``x``.
    """
    return jax.nn.log_softmax(x, axis=axis)


def gelu(x: jax.Array, approximate: bool = False) -> jax.Array:
    """Gaussian error linear unit; exact (erf) by default, as Keras and PyTorch.

    Args:
      x: the input array.
      approximate: use the tanh approximation instead of the exact erf form.

    Returns:
      An array of the shape and dtype of ``x``.
    """
    return jax.nn.gelu(x, approximate=approximate)


ACTIVATIONS: dict[str, Callable[..., jax.Array]] = {
    "identity": identity,
    "linear": identity,
    "sigmoid": jax.nn.sigmoid,
    "logistic": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "selu": jax.nn.selu,
    "gelu": gelu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "softplus": jax.nn.softplus,
    "softmax": softmax,
    "log_softmax": log_softmax,
}


def _choices() -> str:
    return ", ".join(repr(n) for n in ACTIVATIONS)


def resolve(where: str, activation: Any, kwargs: dict | None = None, what: str = "activation"):
    """:func:`get` with the caller named in its errors, and ``kwargs`` checked at once.

    Args:
      where: the function or layer, the start of every message ("Dense").
      activation: a name in ``ACTIVATIONS``, a callable, or None.
      kwargs: keyword arguments to bind to the function; each must be one it accepts.
      what: the argument's name in the messages.

    Returns:
      The activation function, with ``kwargs`` bound if any were given.

    Raises:
      TypeError: ``activation`` is neither a name, a callable nor None, or ``kwargs``
        holds a keyword the function does not take.
      ValueError: ``activation`` is a name not in ``ACTIVATIONS``.
    """
    kwargs = kwargs or {}
    if activation is None:
        fn = identity
    elif callable(activation):
        fn = activation
    elif isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"{where}: unknown activation {activation!r}: {what} must be a callable, None "
                f"or one of {_choices()}, got {activation!r}"
            )
        fn = ACTIVATIONS[activation]
    else:
        raise TypeError(
            f"{where}: {what} must be a callable, None or one of {_choices()}, got "
            f"{activation!r} (a {type(activation).__name__})"
        )
    if kwargs:
        _check_keywords(where, fn, activation_name(activation), kwargs)
        return functools.partial(fn, **kwargs)
    return fn


def _check_keywords(where: str, fn: Callable, shown: str, kwargs: dict) -> None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to check against: leave it to the call
        return
    try:
        signature.bind_partial(None, **kwargs)
    except TypeError:
        accepted = [
            p.name
            for p in list(signature.parameters.values())[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        unknown = sorted(k for k in kwargs if k not in signature.parameters)
        names = ", ".join(map(repr, unknown or kwargs))
        raise TypeError(
            f"{where}: {shown} takes no keyword argument {names}; its keywords are "
            f"{accepted or 'none'}"
        ) from None


def get(activation: str | Callable[..., jax.Array] | None, **kwargs) -> Callable:
    """Resolve an activation name (or pass a callable through); ``None`` is identity.

    Args:
      activation: a name in ``ACTIVATIONS``, a callable, or None.
      **kwargs: fixed keyword arguments bound to the function (``functools.partial``).

    Returns:
      The activation function, with ``kwargs`` bound if any were given.

    Raises:
      ValueError: for a name that is not in ``ACTIVATIONS``.
      TypeError: for anything else that is not a callable or None, or a keyword the
        function does not take.
    """
    return resolve("activations.get", activation, kwargs)


def check_name(where: str, name: Any) -> str | None:
    """A layer's ``name`` argument: a non-empty string or None.

    Args:
      where: the layer, the start of the message.
      name: what came.

    Returns:
      ``name``.

    Raises:
      TypeError: ``name`` is neither a string nor None.
      ValueError: ``name`` is the empty string.
    """
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(
            f"{where}: name must be a str or None, got {name!r} (a {type(name).__name__})"
        )
    if not name:
        raise ValueError(f"{where}: name must be a non-empty str or None, got ''")
    return name


def activation_name(activation: str | Callable | None) -> str:
    """A short display name for an activation.

    Args:
      activation: a name, a callable, or None.

    Returns:
      The name itself, "identity" for None, or the callable's ``__name__`` (its type's
      name when it has none).
    """
    if activation is None:
        return "identity"
    if isinstance(activation, str):
        return activation
    return getattr(activation, "__name__", type(activation).__name__)


def Activation(
    activation: str | Callable[..., jax.Array], name: str | None = None, **kwargs
) -> Layer:
    """A layer that applies an activation elementwise, e.g. ``Activation("relu")``.

    Args:
      activation: a name in ``ACTIVATIONS`` or a callable (see :func:`get`).
      name: the key of the layer in its parent.
      **kwargs: keyword arguments for the function, e.g.
        ``Activation("leaky_relu", negative_slope=0.2)``.

    Returns:
      The layer (no params); its kind is the name in CamelCase ("LeakyRelu").

    Raises:
      ValueError: for an unknown activation name.
      TypeError: for an activation of another type, a keyword the function does not
        take, or a ``name`` that is not a string.
    """
    return _activation_layer("Activation", activation, name, kwargs)


def _activation_layer(where: str, activation, name, kwargs) -> Layer:
    fn = resolve(where, activation, kwargs)
    check_name(where, name)
    kind = "".join(part.capitalize() for part in activation_name(activation).split("_"))
    return stateless(kind, fn, name=name)


def _layer(activation: str) -> Callable[..., Layer]:
    layer_name = "".join(part.capitalize() for part in activation.split("_"))

    def make(name: str | None = None, **kwargs) -> Layer:
        return _activation_layer(layer_name, activation, name, kwargs)

    make.__name__ = layer_name
    make.__doc__ = f"""A layer applying ``{activation}`` (see :func:`Activation`).

    Args:
      name: the key of the layer in its parent.
      **kwargs: keyword arguments for ``{activation}``.

    Returns:
      The layer (no params).
    """
    return make


Identity = _layer("identity")
Sigmoid = _layer("sigmoid")
Tanh = _layer("tanh")
Relu = _layer("relu")
LeakyRelu = _layer("leaky_relu")
Elu = _layer("elu")
Selu = _layer("selu")
Gelu = _layer("gelu")
Silu = _layer("silu")
Softplus = _layer("softplus")
Softmax = _layer("softmax")
LogSoftmax = _layer("log_softmax")
