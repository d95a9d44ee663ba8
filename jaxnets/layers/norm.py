"""Normalisation layers: BatchNorm, LayerNorm and GroupNorm (features on the last axis)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets import _impl
from jaxnets.core import Layer, along_last, as_spec, check_floating, check_rank, layer_error, param
from jaxnets.core.arguments import count, number
from jaxnets.layers._checks import common


def _epsilon(kind: str, epsilon) -> float:
    return number(kind, "epsilon", epsilon, low=0.0, low_open=True)


def _compute_dtype(x):
    """Statistics in at least float32 (bfloat16 and float16 inputs are upcast)."""
    return jnp.promote_types(x.dtype, jnp.float32)


def _batch_moments(x, axes):
    """Mean and biased variance over ``axes`` in one pass (``E[x^2] - E[x]^2``)."""
    mean = jnp.mean(x, axis=axes)
    return mean, jnp.maximum(jnp.mean(jnp.square(x), axis=axes) - jnp.square(mean), 0.0)


def _batch_norm(x, scale, bias, axes, epsilon):
    """``(y, mean, var)``: BatchNorm in training, standardised with the batch's ``mean`` and
    biased ``var`` over ``axes``, then scaled by ``scale`` and shifted by ``bias`` (None:
    none)."""
    mean, var = _batch_moments(x, axes)
    y = (x - along_last(mean, x.ndim)) * along_last(jax.lax.rsqrt(var + epsilon), x.ndim)
    if scale is not None:
        y = y * along_last(scale, x.ndim)
    if bias is not None:
        y = y + along_last(bias, x.ndim)
    return y, mean, var


_impl.define_op("batch_norm", _batch_norm, layer="BatchNorm", declares={"normalisation"})
_impl.define_op("layer_norm", None, layer="LayerNorm", declares={"normalisation"})
_impl.define_op("group_norm", None, layer="GroupNorm", declares={"normalisation"})


def _affine(params, y, kind, features, use_scale, use_bias):
    if use_scale:
        y = y * along_last(param(params, "scale", kind, (features,)).astype(y.dtype), y.ndim)
    if use_bias:
        y = y + along_last(param(params, "bias", kind, (features,)).astype(y.dtype), y.ndim)
    return y


def _optional(params, name, kind, features, used, dtype):
    return param(params, name, kind, (features,)).astype(dtype) if used else None


def _affine_params(features, use_scale, use_bias, dtype):
    params = {}
    if use_scale:
        params["scale"] = jnp.ones((features,), dtype)
    if use_bias:
        params["bias"] = jnp.zeros((features,), dtype)
    return params


def _check_input_features(kind, x, features):
    check_floating(kind, x)
    if x.ndim < 1 or x.shape[-1] != features:
        raise layer_error(
            kind, f"expected {features} features on the last axis, got shape {tuple(x.shape)}"
        )


def BatchNorm(
    momentum: float = 0.99,
    epsilon: float = 1e-5,
    *,
    use_scale: bool = True,
    use_bias: bool = True,
    param_dtype=jnp.float32,
    impl: str = "auto",
    name: str | None = None,
) -> Layer:
    """Batch normalisation over every axis but the last (Ioffe & Szegedy 2015).

    Training normalises with the batch's mean and (biased) variance and updates
    ``state = {"mean", "var"}`` as ``avg = momentum * avg + (1 - momentum) * batch``
    (Keras/flax convention; PyTorch's ``momentum=0.1`` is ``momentum=0.9`` here).
    Inference normalises with the averages. The running variance starts at 1. Under
    ``jax.jit`` with a batch sharded over devices the statistics are the global batch's.
    Statistics are computed in at least float32; the output has the input's dtype.

    Args:
      momentum: the weight of the running averages' old value, in [0, 1].
      epsilon: added to the variance before its inverse square root.
      use_scale: learn a per-feature scale (``params["scale"]``).
      use_bias: learn a per-feature shift (``params["bias"]``).
      param_dtype: the dtype of the params.
      impl: the implementation of training mode: "auto", "reference" or "closed_form"
        (the derivative in closed form, which "auto" picks on the CPU; see
        ``docs/implementations.md``).
      name: the key of the params in the parent.

    Returns:
      The layer; ``state = {"mean", "var"}``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> bn = jn.BatchNorm()
        >>> _, params, state = bn.init(jax.random.key(0), (8, 3))
        >>> state["var"]
        Array([1., 1., 1.], dtype=float32)
    """
    kind = "BatchNorm"
    momentum = number(kind, "momentum", momentum, low=0.0, high=1.0)
    epsilon = _epsilon(kind, epsilon)
    common(kind, name=name, dtype=param_dtype, use_scale=use_scale, use_bias=use_bias)
    _impl.check_impl("batch_norm", impl)

    def apply(params, state, x, *, key=None, train):
        mean_avg = param(state, "mean", kind)
        features = mean_avg.shape[0]
        _check_input_features(kind, x, features)
        var_avg = param(state, "var", kind, (features,))
        xc = x.astype(_compute_dtype(x))
        if train:
            axes = tuple(range(x.ndim - 1))
            scale = _optional(params, "scale", kind, features, use_scale, xc.dtype)
            bias = _optional(params, "bias", kind, features, use_bias, xc.dtype)
            batch_norm = _impl.choose("batch_norm", impl, xc, scale, bias, axes, epsilon)
            y, mean, var = (batch_norm.fn or _batch_norm)(xc, scale, bias, axes, epsilon)
            new_state = {
                "mean": (momentum * mean_avg + (1.0 - momentum) * mean).astype(mean_avg.dtype),
                "var": (momentum * var_avg + (1.0 - momentum) * var).astype(var_avg.dtype),
            }
        else:
            _impl.choose("batch_norm", _impl.REFERENCE)  # the averages' own formula
            inv = along_last(jax.lax.rsqrt(var_avg + epsilon), x.ndim)
            y, new_state = (xc - along_last(mean_avg, x.ndim)) * inv, state
            y = _affine(params, y, kind, features, use_scale, use_bias)
        return y.astype(x.dtype), new_state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        check_rank(kind, spec, 2, " (batch, ..., features)")
        features = spec.shape[-1]
        params = _affine_params(features, use_scale, use_bias, param_dtype)
        state = {
            "mean": jnp.zeros((features,), jnp.float32),
            "var": jnp.ones((features,), jnp.float32),
        }
        return spec, params, state

    return Layer(init, apply, kind, name)


def _norm_axes(kind: str, axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (an int or a tuple of ints, negative from the end) as sorted positive axes."""
    axes = (axis,) if isinstance(axis, int) and not isinstance(axis, bool) else axis
    ok = (
        isinstance(axes, (tuple, list))
        and axes
        and all(isinstance(a, int) and not isinstance(a, bool) for a in axes)
    )
    if not ok:
        raise TypeError(f"{kind}: axis must be an int or a non-empty tuple of ints, got {axis!r}")
    out = sorted(a % ndim if -ndim <= a < ndim else -1 for a in axes)
    if out[0] < 0 or len(set(out)) != len(out):
        raise layer_error(
            kind, f"axis={axis!r} must name distinct axes of the input, got one of rank {ndim}"
        )
    return tuple(out)


def LayerNorm(
    epsilon: float = 1e-5,
    *,
    axis: int | tuple[int, ...] = -1,
    use_scale: bool = True,
    use_bias: bool = True,
    param_dtype=jnp.float32,
    name: str | None = None,
) -> Layer:
    """Layer normalisation of each example over ``axis``, by default the last (Ba et al.
    2016).

    The same in training and inference. Statistics are computed in at least float32; the
    output has the input's dtype.

    Args:
      epsilon: added to the variance before its inverse square root (Keras's default is
        1e-3).
      axis: the axes normalised over and scaled per element: an int or a tuple of ints
        (negative ones count from the end), as Keras's ``axis``.
      use_scale: learn a per-feature scale (``params["scale"]``, initialised to ones).
      use_bias: learn a per-feature shift (``params["bias"]``, initialised to zeros).
      param_dtype: the dtype of the params.
      name: the key of the layer in its parent.

    Returns:
      The layer; its params are ``scale`` and ``bias`` as enabled, of shape ``(features,)``
      or, for several axes, the input's sizes on them (in increasing axis order); no state.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> ln = jn.LayerNorm(axis=(1, 2))
        >>> _, params, _ = ln.init(jax.random.key(0), (2, 3, 4))
        >>> params["scale"].shape
        (3, 4)
        >>> x = jax.random.normal(jax.random.key(1), (2, 3, 4))
        >>> y, _ = ln.apply(params, {}, x, train=False)
        >>> abs(float(y[0].mean())) < 1e-6
        True
    """
    kind = "LayerNorm"
    epsilon = _epsilon(kind, epsilon)
    common(kind, name=name, dtype=param_dtype, use_scale=use_scale, use_bias=use_bias)
    _norm_axes(kind, axis, 64)  # the types now; the ranks against each input

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        _impl.choose("layer_norm", _impl.REFERENCE)
        axes = _norm_axes(kind, axis, x.ndim)
        xc = x.astype(_compute_dtype(x))
        mean = jnp.mean(xc, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(xc - mean), axis=axes, keepdims=True)
        y = (xc - mean) * jax.lax.rsqrt(var + epsilon)
        if axes == (x.ndim - 1,):
            y = _affine(params, y, kind, x.shape[-1], use_scale, use_bias)
            return y.astype(x.dtype), state
        shape = tuple(x.shape[a] for a in axes)
        broadcast = tuple(x.shape[a] if a in axes else 1 for a in range(x.ndim))
        for used, pname in ((use_scale, "scale"), (use_bias, "bias")):
            if used:
                p = param(params, pname, kind, shape).astype(y.dtype).reshape(broadcast)
                y = y * p if pname == "scale" else y + p
        return y.astype(x.dtype), state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        check_rank(kind, spec, 1)
        axes = _norm_axes(kind, axis, len(spec.shape))
        if axes == (len(spec.shape) - 1,):
            return spec, _affine_params(spec.shape[-1], use_scale, use_bias, param_dtype), {}
        shape = tuple(spec.shape[a] for a in axes)
        params = {}
        if use_scale:
            params["scale"] = jnp.ones(shape, param_dtype)
        if use_bias:
            params["bias"] = jnp.zeros(shape, param_dtype)
        return spec, params, {}

    return Layer(init, apply, kind, name)


def GroupNorm(
    num_groups: int = 32,
    epsilon: float = 1e-5,
    *,
    use_scale: bool = True,
    use_bias: bool = True,
    param_dtype=jnp.float32,
    name: str | None = None,
) -> Layer:
    """Group normalisation (Wu & He 2018): the channels (last axis) are split into
    ``num_groups`` contiguous groups, and each example is normalised over its spatial axes
    and the channels of each group, as flax's ``nn.GroupNorm``.

    Independent of the batch and the same in training and inference. ``num_groups=1``
    normalises each example over all its values; one group per channel is instance
    normalisation. Statistics are computed in at least float32.

    Args:
      num_groups: the number of channel groups; it must divide the channels.
      epsilon: added to the variance before its inverse square root.
      use_scale: learn a per-channel scale (``params["scale"]``, initialised to ones).
      use_bias: learn a per-channel shift (``params["bias"]``, initialised to zeros).
      param_dtype: the dtype of the params.
      name: the key of the layer in its parent.

    Returns:
      The layer; its params are ``scale`` and ``bias`` (channels,) as enabled; no state.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> gn = jn.GroupNorm(num_groups=2)
        >>> _, params, _ = gn.init(jax.random.key(0), (1, 4, 4, 6))
        >>> x = jax.random.normal(jax.random.key(1), (1, 4, 4, 6))
        >>> y, _ = gn.apply(params, {}, x, train=False)
        >>> round(float(y[..., :3].std()), 3), round(float(y[..., 3:].mean()), 3)
        (1.0, 0.0)
    """
    kind = "GroupNorm"
    num_groups = count(kind, "num_groups", num_groups)
    epsilon = _epsilon(kind, epsilon)
    common(kind, name=name, dtype=param_dtype, use_scale=use_scale, use_bias=use_bias)

    def check_groups(shape):
        if len(shape) < 2:
            raise layer_error(
                kind, f"expected an input (batch, ..., channels), got shape {tuple(shape)}"
            )
        if shape[-1] % num_groups:
            raise layer_error(
                kind,
                f"num_groups={num_groups} must divide the channels, got {shape[-1]} channels "
                f"(input shape {tuple(shape)})",
            )

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        check_groups(x.shape)
        _impl.choose("group_norm", _impl.REFERENCE)
        channels = x.shape[-1]
        xc = x.astype(_compute_dtype(x))
        grouped = xc.reshape((*x.shape[:-1], num_groups, channels // num_groups))
        axes = (*range(1, x.ndim - 1), x.ndim)
        mean = jnp.mean(grouped, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(grouped - mean), axis=axes, keepdims=True)
        y = ((grouped - mean) * jax.lax.rsqrt(var + epsilon)).reshape(x.shape)
        y = _affine(params, y, kind, channels, use_scale, use_bias)
        return y.astype(x.dtype), state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        check_rank(kind, spec, 2, " (batch, ..., channels)")
        check_groups(spec.shape)
        return spec, _affine_params(spec.shape[-1], use_scale, use_bias, param_dtype), {}

    return Layer(init, apply, kind, name)
