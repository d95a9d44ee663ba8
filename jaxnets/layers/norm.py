"""Normalisation layers: BatchNorm and LayerNorm (features on the last axis)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxnets import cpu
from jaxnets.core import Layer, along_last, as_spec, check_floating, check_rank, layer_error, param


def _compute_dtype(x):
    """Statistics in at least float32 (bfloat16 and float16 inputs are upcast)."""
    return jnp.promote_types(x.dtype, jnp.float32)


def _batch_moments(x, axes):
    """Mean and biased variance over ``axes`` in one pass (``E[x^2] - E[x]^2``)."""
    mean = jnp.mean(x, axis=axes)
    return mean, jnp.maximum(jnp.mean(jnp.square(x), axis=axes) - jnp.square(mean), 0.0)


def _standardize_plain(x, axes, epsilon):
    mean, var = _batch_moments(x, axes)
    inv = along_last(jax.lax.rsqrt(var + epsilon), x.ndim)
    return (x - along_last(mean, x.ndim)) * inv, mean, var


def _batch_norm_forward(x, scale, bias, axes, epsilon):
    mean, var = _batch_moments(x, axes)
    inv = jax.lax.rsqrt(var + epsilon)
    a = scale * inv
    xc = x - along_last(mean, x.ndim)
    y = xc * along_last(a, x.ndim) + along_last(bias, x.ndim)
    return y, mean, var, xc, a, inv


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _batch_norm(x, scale, bias, axes, epsilon):
    """``(y, mean, var)``: BatchNorm in training, ``y = (x - mean) * a + bias`` with the
    per-feature ``a = scale * rsqrt(var + epsilon)`` and the batch's ``mean`` and biased
    ``var`` over ``axes``; the CPU formulation (the plain one standardises, then scales).

    The derivative is written in closed form over ``xc = x - mean`` and per-feature vectors
    only, ``dy = dx * a + xc * (dscale * inv - a * inv**2 * mean(dx * xc)) + dbias -
    a * mean(dx)``, so its transpose is two reductions (``sum(g)``, ``sum(g * xc)``) and
    one elementwise pass ``dx = g * a + xc * c1 + c0``; the standardised ``x_hat`` is never
    formed. Differentiating the plain formula gives XLA:CPU more activation-sized passes
    and temporaries. A ResNet-20 train step with XLA's elementwise ops and reductions in
    YNNPACK fusions measured 0.88x against a closed-form derivative of the standardisation
    alone (and 0.70x against that form with only dots in YNNPACK); with XLA's own
    elementwise fusions the two forms are about equal (``benchmarks/RESULTS_CPU.md``).
    Forward mode works (it is a ``custom_jvp``).
    """
    return _batch_norm_forward(x, scale, bias, axes, epsilon)[:3]


@_batch_norm.defjvp
def _batch_norm_jvp(axes, epsilon, primals, tangents):
    (x, scale, bias), (dx, d_scale, d_bias) = primals, tangents
    y, mean, var, xc, a, inv = _batch_norm_forward(x, scale, bias, axes, epsilon)
    s1 = jnp.mean(dx, axis=axes)
    s2 = jnp.mean(dx * xc, axis=axes)
    c1 = d_scale * inv - a * jnp.square(inv) * s2
    c0 = d_bias - a * s1
    # dx * a on the (rows, features) view: a broadcast of another shape than the forward's
    # xc * a. XLA:CPU would otherwise share one broadcast between the forward and backward
    # passes and, elementwise ops running in YNNPACK fusions, write it out in full.
    dx_a = (dx.reshape(-1, dx.shape[-1]) * a[None, :]).reshape(dx.shape)
    dy = dx_a + xc * along_last(c1, x.ndim) + along_last(c0, x.ndim)
    return (y, mean, var), (dy, s1, 2.0 * s2)


def _affine(params, y, kind, features, use_scale, use_bias):
    if use_scale:
        y = y * along_last(param(params, "scale", kind, (features,)).astype(y.dtype), y.ndim)
    if use_bias:
        y = y + along_last(param(params, "bias", kind, (features,)).astype(y.dtype), y.ndim)
    return y


def _scale_bias(params, kind, features, use_scale, use_bias, dtype):
    """The affine parameters as ``dtype`` vectors (ones / zeros where the layer has none)."""
    scale = (
        param(params, "scale", kind, (features,)).astype(dtype)
        if use_scale
        else jnp.ones((features,), dtype)
    )
    bias = (
        param(params, "bias", kind, (features,)).astype(dtype)
        if use_bias
        else jnp.zeros((features,), dtype)
    )
    return scale, bias


def _affine_params(features, use_scale, use_bias, dtype):
    params = {}
    if use_scale:
        params["scale"] = jnp.ones((features,), dtype)
    if use_bias:
        params["bias"] = jnp.zeros((features,), dtype)
    return params


def _check_features(kind, x, features):
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
    name: str | None = None,
) -> Layer:
    """Batch normalisation over every axis but the last (Ioffe & Szegedy 2015).

    Training normalises with the batch's mean and (biased) variance and updates
    ``state = {"mean", "var"}`` as ``avg = momentum * avg + (1 - momentum) * batch``
    (Keras/flax convention; PyTorch's ``momentum=0.1`` is ``momentum=0.9`` here).
    Inference normalises with the averages. The running variance starts at 1. Under
    ``jax.jit`` with a batch sharded over devices the statistics are the global batch's.
    Statistics are computed in at least float32; the output has the input's dtype.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> bn = jn.BatchNorm()
        >>> _, params, state = bn.init(jax.random.key(0), (8, 3))
        >>> state["var"]
        Array([1., 1., 1.], dtype=float32)
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"BatchNorm: momentum must lie in [0, 1], got {momentum}")
    if epsilon <= 0:
        raise ValueError(f"BatchNorm: epsilon must be positive, got {epsilon}")
    kind = "BatchNorm"

    def apply(params, state, x, *, key=None, train):
        mean_avg = param(state, "mean", kind)
        features = mean_avg.shape[0]
        _check_features(kind, x, features)
        var_avg = param(state, "var", kind, (features,))
        xc = x.astype(_compute_dtype(x))
        if train:
            axes = tuple(range(x.ndim - 1))
            if cpu.on_cpu():
                scale, bias = _scale_bias(params, kind, features, use_scale, use_bias, xc.dtype)
                y, mean, var = _batch_norm(xc, scale, bias, axes, epsilon)
            else:
                y, mean, var = _standardize_plain(xc, axes, epsilon)
                y = _affine(params, y, kind, features, use_scale, use_bias)
            new_state = {
                "mean": (momentum * mean_avg + (1.0 - momentum) * mean).astype(mean_avg.dtype),
                "var": (momentum * var_avg + (1.0 - momentum) * var).astype(var_avg.dtype),
            }
        else:
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


def LayerNorm(
    epsilon: float = 1e-5,
    *,
    use_scale: bool = True,
    use_bias: bool = True,
    param_dtype=jnp.float32,
    name: str | None = None,
) -> Layer:
    """Layer normalisation over the last axis of each example (Ba et al. 2016).

    Same in training and inference; ``params = {"scale", "bias"}`` of the feature size.
    """
    if epsilon <= 0:
        raise ValueError(f"LayerNorm: epsilon must be positive, got {epsilon}")
    kind = "LayerNorm"

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        features = x.shape[-1]
        xc = x.astype(_compute_dtype(x))
        mean = jnp.mean(xc, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(xc - mean), axis=-1, keepdims=True)
        y = (xc - mean) * jax.lax.rsqrt(var + epsilon)
        y = _affine(params, y, kind, features, use_scale, use_bias)
        return y.astype(x.dtype), state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        check_rank(kind, spec, 1)
        return spec, _affine_params(spec.shape[-1], use_scale, use_bias, param_dtype), {}

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

    Independent of the batch and the same in training and inference; ``params =
    {"scale", "bias"}`` per channel. ``num_groups`` must divide the channels
    (``num_groups=1`` normalises each example over all its values; one group per channel
    is instance normalisation). Statistics are computed in at least float32.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> gn = jn.GroupNorm(num_groups=2)
        >>> _, params, _ = gn.init(jax.random.key(0), (1, 4, 4, 6))
        >>> x = jax.random.normal(jax.random.key(1), (1, 4, 4, 6))
        >>> y, _ = gn.apply(params, {}, x, train=False)
        >>> round(float(y[..., :3].std()), 3), round(float(y[..., 3:].mean()), 3)
        (1.0, 0.0)
    """
    if not isinstance(num_groups, int) or isinstance(num_groups, bool) or num_groups < 1:
        raise ValueError(f"GroupNorm: num_groups must be a positive int, got {num_groups!r}")
    if epsilon <= 0:
        raise ValueError(f"GroupNorm: epsilon must be positive, got {epsilon}")
    kind = "GroupNorm"

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
