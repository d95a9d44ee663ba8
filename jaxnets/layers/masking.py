"""Masking: mark the steps of a sequence whose features all equal a value as padding.

A mask travels beside the sequence as the tuple ``(x, mask)``, the form the recurrent
layers take (:mod:`jaxnets.layers.sequences`), so ``serial(Masking(), RNN(LSTM(8)))``
skips the padded steps as Keras does.

Example:
    >>> import jax.numpy as jnp, jaxnets as jn
    >>> x = jnp.array([[[1.0], [2.0], [0.0]]])
    >>> (y, mask), _ = jn.Masking().apply({}, {}, x, train=False)
    >>> mask.tolist()
    [[True, True, False]]
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxnets.core import Layer, as_spec, check_floating, check_rank, infer_output
from jaxnets.core.arguments import number
from jaxnets.layers._checks import check_name


def Masking(mask_value: float = 0.0, *, name: str | None = None) -> Layer:
    """``x (batch, time, ...) -> (x * mask, mask)``: a step is padding when all its values
    equal ``mask_value`` (Keras's ``Masking``; padded steps come out as zeros).

    Args:
      mask_value: the value that marks a padded step.
      name: the key of the layer in its parent.

    Returns:
      The layer (no params); its output is ``(x, mask)`` with a boolean ``(batch, time)``
      mask, true at the valid steps.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> net = jn.serial(jn.Masking(-1.0), jn.RNN(jn.GRU(2), return_sequences=False))
        >>> spec, params, _ = net.init(jax.random.key(0), (3, 4, 5))
        >>> spec.shape
        (3, 2)
    """
    kind = "Masking"
    mask_value = number(kind, "mask_value", mask_value)
    check_name(kind, name)

    def apply(params, state, x, *, key=None, train):
        check_floating(kind, x)
        keep = jnp.any(x != jnp.asarray(mask_value, x.dtype), axis=tuple(range(2, x.ndim)))
        shaped = keep.reshape(keep.shape + (1,) * (x.ndim - 2))
        return (jnp.where(shaped, x, jnp.zeros_like(x)), keep), state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        check_rank(kind, spec, 3, " (batch, time, features)")
        return infer_output(apply, {}, {}, spec), {}, {}

    return Layer(init, apply, kind, name)
