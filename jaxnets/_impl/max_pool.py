"""Max pooling over windows that tile the input, as a chain of selects (the CPU formulation).

Stride = window and no padding (a remainder is dropped): the maximum over the offsets
inside a window in row-major order, so the first maximum wins and values and gradients
equal ``reduce_window``'s on the CPU (ties included), and a NaN propagates. XLA:CPU
differentiates ``reduce_window`` through select-and-scatter with index arrays of the
input's size; the selects fuse. Plain JAX: every transformation works.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp

from jaxnets._impl.registry import TRANSFORMS, register


def _tiles(x, size, strides, pads) -> str | None:
    if tuple(strides) != tuple(size) or any(tuple(p) != (0, 0) for p in pads):
        return (
            f"needs windows that tile the input (strides equal to the window, no padding); "
            f"got window {tuple(size)}, strides {tuple(strides)}, padding {tuple(pads)}"
        )
    return None


@register("max_pool", "tiled", platforms={"cpu"}, transforms=TRANSFORMS, applies=_tiles)
def tiled(x, size, strides, pads):
    """The maximum over each ``size`` window of ``x`` ``(batch, *spatial, channels)``."""
    out = tuple(n // k for n, k in zip(x.shape[1:-1], size, strict=True))
    x = x[(slice(None), *(slice(0, o * k) for o, k in zip(out, size, strict=True)), slice(None))]
    split = [d for o, k in zip(out, size, strict=True) for d in (o, k)]
    x = x.reshape((x.shape[0], *split, x.shape[-1]))
    best = None
    for offset in itertools.product(*(range(k) for k in size)):
        v = x[(slice(None), *(i for j in offset for i in (slice(None), j)), slice(None))]
        best = v if best is None else jnp.where((v > best) | jnp.isnan(v), v, best)
    return best
