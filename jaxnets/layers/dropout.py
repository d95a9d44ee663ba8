"""Dropout and AlphaDropout: random unit dropping in training, identity in inference."""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp

from jaxnets.core import Layer, as_spec, layer_error
from jaxnets.layers._checks import check_name


def _validate_rate(kind: str, rate: float, name=None) -> float:
    check_name(kind, name)
    message = (
        f"{kind}: rate is the probability of dropping a unit and must be a number in [0, 1), "
        f"got {rate!r}"
    )
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{message} (a {type(rate).__name__})")
    if not math.isfinite(rate) or not 0.0 <= rate < 1.0:
        raise ValueError(message)
    return float(rate)


def _need_key(kind: str, key):
    if key is None:
        raise layer_error(
            kind,
            "needs a PRNG key in training: call apply(..., key=jax.random.key(seed), "
            "train=True), or train=False for inference",
        )


def Dropout(rate: float, name: str | None = None) -> Layer:
    """Inverted dropout: drop each unit with probability ``rate`` and scale by 1/(1-rate).

    In inference (``train=False``) it is the identity. Training needs ``key=``.

    Args:
      rate: the probability of dropping each unit, in [0, 1).
      name: the key of the layer in its parent.

    Returns:
      The layer (no params).

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> drop = jn.Dropout(0.5)
        >>> y, _ = drop.apply({}, {}, jnp.ones(4), key=jax.random.key(0), train=True)
        >>> sorted(set(y.tolist())) in ([0.0, 2.0], [2.0], [0.0])
        True
    """
    rate = _validate_rate("Dropout", rate, name)
    kind = "Dropout"

    def apply(params, state, x, *, key=None, train):
        if not train or rate == 0.0:
            return x, state
        _need_key(kind, key)
        keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
        return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x)).astype(x.dtype), state

    def init(key, input_spec):
        return as_spec(input_spec), {}, {}

    return Layer(init, apply, kind, name)


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def AlphaDropout(rate: float, name: str | None = None) -> Layer:
    """Dropout that keeps SELU activations at mean 0 and variance 1 (Klambauer et al. 2017).

    Dropped units are set to SELU's negative saturation value ``-scale * alpha``, then an
    affine correction ``a * x + b`` restores the mean and variance. Identity in inference;
    training needs ``key=``.

    Args:
      rate: the probability of dropping each unit, in [0, 1).
      name: the key of the layer in its parent.

    Returns:
      The layer (no params).
    """
    rate = _validate_rate("AlphaDropout", rate, name)
    kind = "AlphaDropout"
    alpha_p = -_SELU_SCALE * _SELU_ALPHA
    keep_prob = 1.0 - rate
    a = (keep_prob * (1.0 + rate * alpha_p**2)) ** -0.5
    b = -a * alpha_p * rate

    def apply(params, state, x, *, key=None, train):
        if not train or rate == 0.0:
            return x, state
        _need_key(kind, key)
        keep = jax.random.bernoulli(key, keep_prob, x.shape)
        y = jnp.where(keep, x, jnp.asarray(alpha_p, x.dtype))
        return (a * y + b).astype(x.dtype), state

    def init(key, input_spec):
        return as_spec(input_spec), {}, {}

    return Layer(init, apply, kind, name)
