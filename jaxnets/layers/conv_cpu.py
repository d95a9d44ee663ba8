"""CPU convolution formulations: Winograd minimal filtering for stride-1 2-D convolutions.

Winograd's F(m x m, r x r) (Lavin & Gray 2016, arXiv:1509.09308) computes an ``m x m``
output tile of an ``r x r`` correlation from an ``n x n`` input tile (``n = m + r - 1``)
with ``n * n`` multiplications per channel pair instead of ``m * m * r * r``:

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A

Over channels the elementwise product becomes ``n * n`` independent matrix products
``[tiles, C_in] @ [C_in, C_out]``, which XLA:CPU runs as one batched dot; the transforms are
sums of strided slices with small constant coefficients, which XLA fuses. The backward
pass is JAX's own transpose of these linear maps (a batched dot in the Winograd domain for
the filter gradient, the transposed transforms for the input gradient), so XLA never sees
a convolution and never transposes activations into the ``[C, H, W, N]`` layout its
filter-gradient convolution wants.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxnets.layers import conv_cpu
    >>> x = jnp.ones((1, 6, 6, 2)); w = jnp.ones((3, 3, 2, 4))
    >>> y = conv_cpu.winograd_conv2d(x, w, ((1, 1), (1, 1)), tile=2)
    >>> y.shape, float(y[0, 2, 2, 0]), float(y[0, 0, 0, 0])
    ((1, 6, 6, 4), 18.0, 8.0)
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

#: interpolation points per tile size ``n = m + r - 1`` (infinity is the last point)
_POINTS = {
    4: (0, 1, -1),
    5: (0, 1, -1, 2),
    6: (0, 1, -1, 2, -2),
    7: (0, 1, -1, 2, -2, Fraction(1, 2)),
    8: (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2)),
}


def _poly_mul(p, q):
    out = [Fraction(0)] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] += a * b
    return out


def _roots_poly(points):
    poly = [Fraction(1)]
    for q in points:
        poly = _poly_mul(poly, [-q, Fraction(1)])
    return poly


@functools.cache
def matrices(m: int, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Toom-Cook matrices ``(A^T, G, B^T)`` of F(m, r) (shapes ``m x n``, ``n x r``,
    ``n x n``), exact rationals converted to float64; ``A^T [(G g) * (B^T d)]`` is the
    correlation ``y[x] = sum_j g[j] d[x + j]``."""
    n = m + r - 1
    if n not in _POINTS:
        raise ValueError(f"no Winograd points for F({m}, {r}) (tile {n}); use n in 4..8")
    pts = [Fraction(p) for p in _POINTS[n]]
    at = [[p**x for p in pts] + [Fraction(int(x == m - 1))] for x in range(m)]
    g, bt = [], []
    for k, p in enumerate(pts):
        others = pts[:k] + pts[k + 1 :]
        g.append([p**j / math.prod(p - q for q in others) for j in range(r)])
        bt.append(_roots_poly(others) + [Fraction(0)])
    g.append([Fraction(int(j == r - 1)) for j in range(r)])
    bt.append(_roots_poly(pts))
    return tuple(np.array(a, dtype=np.float64) for a in (at, g, bt))


def winograd_conv2d(x, w, pads, tile: int = 2):
    """A stride-1, undilated 2-D correlation of ``x`` (NHWC) with ``w`` (HWIO), explicit
    ``pads`` ``((lo, hi), (lo, hi))``, by Winograd F(tile x tile, kh x kw); equals
    ``lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=("NHWC", "HWIO",
    "NHWC"))`` up to float rounding."""
    kh, kw, cin, cout = w.shape
    n_, h, wd, c = x.shape
    if c != cin:
        raise ValueError(f"winograd_conv2d: input has {c} channels, kernel expects {cin}")
    (plo, phi), (qlo, qhi) = pads
    ho, wo = h + plo + phi - kh + 1, wd + qlo + qhi - kw + 1
    m = tile
    th, tw = -(-ho // m), -(-wo // m)
    nh, nw = m + kh - 1, m + kw - 1
    at_h, g_h, bt_h = matrices(m, kh)
    at_w, g_w, bt_w = matrices(m, kw)
    dt = x.dtype
    zero = jnp.zeros((), dt)
    xp = jax.lax.pad(
        x,
        zero,
        (
            (0, 0, 0),
            (plo, th * m + kh - 1 - h - plo, 0),
            (qlo, tw * m + kw - 1 - wd - qlo, 0),
            (0, 0, 0),
        ),
    )
    # the (nh, nw) overlapping tiles: element (u, v) of tile (t, s) is xp[t*m + u, s*m + v]
    d = jnp.stack(
        [
            xp[:, u : u + m * (th - 1) + 1 : m, v : v + m * (tw - 1) + 1 : m, :]
            for u in range(nh)
            for v in range(nw)
        ]
    ).reshape(nh, nw, n_ * th * tw * c)
    v_ = jnp.einsum("au,uvk->avk", bt_h.astype(dt), d)
    v_ = jnp.einsum("bv,avk->abk", bt_w.astype(dt), v_).reshape(nh * nw, n_ * th * tw, c)
    u_ = jnp.einsum("ak,klio,bl->abio", g_h.astype(dt), w.astype(dt), g_w.astype(dt))
    prod = jax.lax.dot_general(v_, u_.reshape(nh * nw, cin, cout), (((2,), (1,)), ((0,), (0,))))
    prod = prod.reshape(nh, nw, n_ * th * tw * cout)
    y = jnp.einsum("ia,abk->ibk", at_h.astype(dt), prod)
    y = jnp.einsum("jb,ibk->ijk", at_w.astype(dt), y).reshape(m, m, n_, th, tw, cout)
    y = y.transpose(2, 3, 0, 4, 1, 5).reshape(n_, th * m, tw * m, cout)
    return y[:, :ho, :wo, :]
