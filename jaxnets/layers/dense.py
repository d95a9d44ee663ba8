"""Fully connected layers and shape plumbing: Dense, Flatten, Reshape."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxnets.core import (
    Layer,
    along_last,
    as_spec,
    check_floating,
    check_rank,
    infer_output,
    layer_error,
    param,
    stateless,
)
from jaxnets.core.arguments import count
from jaxnets.layers._checks import check_name, common, initializer, resolve

Initializer = Callable[..., jax.Array]


def Dense(
    features: int,
    *,
    activation: str | Callable | None = None,
    use_bias: bool = True,
    kernel_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
    param_dtype=jnp.float32,
    name: str | None = None,
) -> Layer:
    """A fully connected layer ``y = activation(x @ kernel + bias)`` on the last axis.

    Computation runs in the input's dtype (bfloat16 inputs give bfloat16 outputs; params
    stay in ``param_dtype``). Inputs have a batch axis, in ``init`` and ``apply`` alike:
    rank 2 at least, ``(batch, ..., features)``.

    Args:
      features: the size of the output's last axis.
      activation: applied to the output: a name ("relu"), a function, or None (identity).
      use_bias: add a learned bias.
      kernel_init: the kernel initialiser (default Glorot uniform, or LeCun normal when
        ``activation="selu"``, as Klambauer et al. 2017 advise).
      bias_init: the bias initialiser (default zeros).
      param_dtype: the dtype of the params.
      name: the key of the layer in its parent.

    Returns:
      The layer; its params are ``kernel`` (in_features, features), as in Keras and flax,
      and, with ``use_bias``, ``bias`` (features,).

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> layer = jn.Dense(3, activation="relu")
        >>> spec, params, _ = layer.init(jax.random.key(0), (5, 4))
        >>> spec.shape, params["kernel"].shape
        ((5, 3), (4, 3))
    """
    kind = "Dense"
    features = count(kind, "features", features)
    act = resolve(kind, activation)
    common(kind, name=name, dtype=param_dtype, use_bias=use_bias)
    initializer(kind, "kernel_init", kernel_init)
    initializer(kind, "bias_init", bias_init, optional=False)
    if kernel_init is None:
        kernel_init = (
            jax.nn.initializers.lecun_normal()
            if activation == "selu"
            else jax.nn.initializers.glorot_uniform()
        )

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        if x.ndim < 2:
            raise layer_error(
                kind,
                f"expected an input of rank >= 2 (batch, ..., features), got shape "
                f"{tuple(x.shape)}",
            )
        kernel = param(params, "kernel", kind)
        if kernel.shape != (x.shape[-1], features):
            raise layer_error(
                kind,
                f"input has {x.shape[-1]} features (shape {tuple(x.shape)}) but the kernel "
                f"has shape {tuple(kernel.shape)}; expected ({x.shape[-1]}, {features})",
            )
        y = jnp.dot(x, kernel.astype(x.dtype))
        if use_bias:
            y = y + along_last(param(params, "bias", kind, (features,)).astype(x.dtype), y.ndim)
        return act(y), state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        check_rank(kind, spec, 2, " (batch, ..., features)")
        k_key, b_key = jax.random.split(key)
        params = {"kernel": kernel_init(k_key, (spec.shape[-1], features), param_dtype)}
        if use_bias:
            params["bias"] = bias_init(b_key, (features,), param_dtype)
        return infer_output(apply, params, {}, spec), params, {}

    return Layer(init, apply, kind, name)


def Flatten(name: str | None = None) -> Layer:
    """Flatten every axis but the batch axis: ``(B, d1, d2, ...) -> (B, d1*d2*...)``.

    Args:
      name: the key of the layer in its parent.

    Returns:
      The layer (no params).
    """

    check_name("Flatten", name)

    def check(spec):
        check_rank("Flatten", spec, 1, " (batch, ...)")

    return stateless("Flatten", lambda x: x.reshape(x.shape[0], -1), name=name, check=check)


def Reshape(shape: tuple[int, ...], name: str | None = None) -> Layer:
    """Reshape every example to ``shape``, keeping the batch axis.

    Args:
      shape: the shape of one example, a tuple of ints >= 0; at most one entry may be -1
        (inferred from the size), and not together with a 0 (nothing to infer it from).
      name: the key of the layer in its parent.

    Returns:
      The layer (no params); its output is ``(batch, *shape)``.

    Raises:
      TypeError: ``shape`` is not a tuple or list of ints.
      ValueError: an entry is below -1, or -1 comes twice or together with a 0.
    """
    shape = _reshape_target(shape)
    check_name("Reshape", name)

    def check(spec):
        check_rank("Reshape", spec, 1, " (batch, ...)")
        size = math.prod(spec.shape[1:])
        known = math.prod(d for d in shape if d != -1)
        if shape.count(-1) > 1 or (size % known if -1 in shape else size != known):
            raise layer_error(
                "Reshape",
                f"cannot reshape examples of shape {tuple(spec.shape[1:])} "
                f"({size} values) to {shape}",
            )

    return stateless("Reshape", lambda x: x.reshape((x.shape[0],) + shape), name=name, check=check)


def _reshape_target(shape) -> tuple[int, ...]:
    where = "Reshape"
    expected = "a tuple of ints (one example's shape, at most one -1)"
    if not isinstance(shape, (tuple, list)) or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in shape
    ):
        raise TypeError(f"{where}: shape must be {expected}, got {shape!r}")
    dims = tuple(int(d) for d in shape)
    if any(d < -1 for d in dims) or dims.count(-1) > 1:
        raise ValueError(f"{where}: shape must be {expected} and sizes >= 0, got {dims}")
    if -1 in dims and 0 in dims:
        raise ValueError(
            f"{where}: shape {dims} has both a 0 and a -1: the -1 cannot be inferred when the "
            f"other sizes multiply to 0; give every size"
        )
    return dims
