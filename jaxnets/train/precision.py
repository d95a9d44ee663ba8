"""Mixed precision: float32 parameters, a lower-precision compute dtype, a loss scale.

Layers compute in their input's dtype and cast their parameters to it, so casting the
floating-point inputs of a batch to ``compute_dtype`` is all it takes: parameters,
optimizer state and gradients stay float32 (the cast's gradient casts back), losses and
normalisation statistics are computed in float32.

bfloat16 has float32's exponent range and needs no loss scale. float16 does: the loss
is multiplied by ``loss_scale`` before differentiation and the gradients divided by it,
so small gradients do not flush to zero; an update whose gradients are not finite is
skipped (the step counter still advances).

Example:
    >>> import jax.numpy as jnp
    >>> inputs, labels = Policy("bfloat16").cast_inputs((jnp.ones(2), jnp.arange(2)))
    >>> inputs.dtype, labels.dtype
    (dtype(bfloat16), dtype('int32'))
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnets.core.arguments import received

PRECISIONS = ("float32", "bfloat16", "float16")


class Policy(NamedTuple):
    """``compute_dtype`` for activations; ``loss_scale`` for float16 (1 means none)."""

    compute_dtype: str = "float32"
    loss_scale: float = 1.0

    @property
    def active(self) -> bool:
        return self.compute_dtype != "float32"

    def cast_inputs(self, inputs: Any) -> Any:
        """Floating-point leaves of ``inputs`` cast to the compute dtype; others unchanged."""
        if not self.active:
            return inputs
        dtype = jnp.dtype(self.compute_dtype)

        def cast(x):
            return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

        return jax.tree.map(cast, inputs)


def policy(
    precision: str | Policy | None = None,
    loss_scale: float | None = None,
    *,
    where: str = "policy",
) -> Policy:
    """A :class:`Policy` from a name in :data:`PRECISIONS`.

    Args:
      precision: ``"float32"``, ``"bfloat16"`` or ``"float16"`` (None: float32), or a
        :class:`Policy`, returned as it is (``loss_scale`` is then ignored).
      loss_scale: the loss scale, a finite number > 0 (None: 2**15 for float16, else 1,
        meaning none).
      where: the function named in the errors.

    Returns:
      The :class:`Policy`.

    Raises:
      TypeError: a precision that is not a string, or a loss scale that is not a number.
      ValueError: an unknown precision, or a loss scale that is not finite and > 0.
    """
    if isinstance(precision, Policy):
        return precision
    name = "float32" if precision is None else precision
    listed = ", ".join(repr(p) for p in PRECISIONS)
    if not isinstance(name, str):
        raise TypeError(
            f"{where}: precision must be one of {listed} or a Policy, got {received(precision)}"
        )
    if name not in PRECISIONS:
        raise ValueError(f"{where}: unknown precision {name!r}; precision must be one of {listed}")
    if loss_scale is None:
        return Policy(name, 2.0**15 if name == "float16" else 1.0)
    if isinstance(loss_scale, bool) or not isinstance(loss_scale, numbers.Real):
        raise TypeError(f"{where}: loss_scale must be a number > 0, got {received(loss_scale)}")
    if not (math.isfinite(loss_scale) and loss_scale > 0):
        raise ValueError(f"{where}: loss_scale must be > 0 and finite, got {loss_scale!r}")
    return Policy(name, float(loss_scale))
