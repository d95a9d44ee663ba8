"""BatchNorm in training with its derivative in closed form (the CPU formulation).

``y = (x - mean) * a + bias`` with the per-feature ``a = scale * rsqrt(var + epsilon)``;
the derivative is written over ``xc = x - mean`` and per-feature vectors only,
``dy = dx * a + xc * (dscale * inv - a * inv**2 * mean(dx * xc)) + dbias - a * mean(dx)``,
so its transpose is two reductions (``sum(g)``, ``sum(g * xc)``) and one elementwise pass
``dx = g * a + xc * c1 + c0``: the standardised ``x_hat`` is never formed, which gives
XLA:CPU fewer activation-sized passes and temporaries than differentiating the reference.
A ``jax.custom_jvp``: every transformation works.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxnets._impl.registry import TRANSFORMS, register
from jaxnets.core import along_last


def _forward(x, scale, bias, axes, epsilon):
    mean = jnp.mean(x, axis=axes)
    var = jnp.maximum(jnp.mean(jnp.square(x), axis=axes) - jnp.square(mean), 0.0)
    inv = jax.lax.rsqrt(var + epsilon)
    a = scale * inv
    xc = x - along_last(mean, x.ndim)
    y = xc * along_last(a, x.ndim) + along_last(bias, x.ndim)
    return y, mean, var, xc, a, inv


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _closed_form(x, scale, bias, axes, epsilon):
    return _forward(x, scale, bias, axes, epsilon)[:3]


@_closed_form.defjvp
def _closed_form_jvp(axes, epsilon, primals, tangents):
    (x, scale, bias), (dx, d_scale, d_bias) = primals, tangents
    y, mean, var, xc, a, inv = _forward(x, scale, bias, axes, epsilon)
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


@register(
    "batch_norm",
    "closed_form",
    platforms={"cpu"},
    transforms=TRANSFORMS,
    declares={"normalisation"},
)
def closed_form(x, scale, bias, axes, epsilon):
    """``(y, mean, var)`` as the reference computes them (``scale``/``bias`` None: ones and
    zeros)."""
    features = x.shape[-1]
    scale = jnp.ones((features,), x.dtype) if scale is None else scale
    bias = jnp.zeros((features,), x.dtype) if bias is None else bias
    return _closed_form(x, scale, bias, axes, epsilon)
