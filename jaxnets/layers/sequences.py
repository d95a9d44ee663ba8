"""The input forms of the recurrent layers: sequences, lengths or masks, initial carries.

A recurrent layer takes ``x`` ``(batch, time, features)``, ``(x, lengths)``, ``(x, mask)``,
``(x, lengths_or_mask, initial_carry)`` or, without padding, ``(x, initial_carry)`` (the
carry is a dict) or ``(x, None, initial_carry)``; padded steps are those past a sequence's
length or where the mask is not positive (``docs/recurrent.md``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core import LayerTypeError, as_spec, is_concrete, layer_error, param

Array = jax.Array


def split_input(kind: str, x):
    """Split a recurrent layer's input into its parts.

    Args:
      kind: the layer's name, for the error message.
      x: ``x``, ``(x, lengths_or_mask)``, ``(x, initial_carry)`` (a dict) or
        ``(x, lengths_or_mask, initial_carry)`` (``lengths_or_mask`` may be None).

    Returns:
      ``(x, lengths_or_mask, initial_carry)``, None for each part not given.

    Raises:
      LayerError: for a tuple or list of another length.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxnets.layers.sequences import split_input
        >>> x, extra, carry = split_input("LSTM", (jnp.ones((1, 2, 3)), {"h": jnp.zeros((1, 4))}))
        >>> extra is None, sorted(carry)
        (True, ['h'])
    """
    if isinstance(x, (tuple, list)):
        if len(x) not in (2, 3):
            raise layer_error(
                kind,
                f"expected x, (x, lengths_or_mask), (x, initial_carry) or "
                f"(x, lengths_or_mask, initial_carry); got a tuple of {len(x)}",
            )
        if len(x) == 2 and isinstance(x[1], dict):
            return x[0], None, x[1]
        return x[0], x[1], (x[2] if len(x) == 3 else None)
    return x, None, None


def check_sequence(kind: str, x) -> None:
    """Check that ``x`` (an array or a spec) is a floating-point ``(batch, time, features)``.

    Args:
      kind: the layer's name, for the error message.
      x: the sequence or its spec.

    Raises:
      LayerError: if ``x`` has no dtype or is not of rank 3.
      LayerTypeError: if its dtype is not floating point.
    """
    shape = tuple(getattr(x, "shape", ()))
    if not hasattr(x, "dtype") or len(shape) != 3:
        raise layer_error(
            kind, f"expected a sequence of shape (batch, time, features), got shape {shape}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise LayerTypeError(
            f"{kind}: expected a floating-point sequence, got dtype {x.dtype} (token ids go "
            f"through an Embedding first)"
        )


def valid_steps(kind: str, lengths_or_mask, batch: int, time: int) -> Array | None:
    """A boolean ``(batch, time)`` array of valid steps from lengths or a mask.

    Concrete lengths outside ``[0, time]`` raise; traced ones act as if clipped.

    Args:
      kind: the layer's name, for error messages.
      lengths_or_mask: integer lengths ``(batch,)``, a mask ``(batch, time)`` (steps where
        it is positive are valid), or None.
      batch: the batch size.
      time: the number of steps.

    Returns:
      The valid steps, or None when there is no padding (no lengths or mask, or concrete
      ones that keep every step).

    Raises:
      LayerError: for a wrong shape or concrete lengths out of range.
      LayerTypeError: for lengths that are not integers.
    """
    if lengths_or_mask is None:
        return None
    v = lengths_or_mask
    shape = tuple(getattr(v, "shape", ()))
    if len(shape) == 1:
        if shape != (batch,):
            raise layer_error(kind, f"lengths must have shape ({batch},), got {shape}")
        if not jnp.issubdtype(v.dtype, jnp.integer):
            raise LayerTypeError(f"{kind}: lengths must be integers, got dtype {v.dtype}")
        if is_concrete(v):
            values = np.asarray(v)
            if values.size == 0:  # an empty batch: nothing is padded
                return None
            if values.min() < 0 or values.max() > time:
                raise layer_error(
                    kind,
                    f"lengths must lie in [0, {time}] (the sequence length), got "
                    f"min {values.min()} and max {values.max()}",
                )
            if values.min() == time:  # no padding: the same as no lengths
                return None
        return jnp.arange(time)[None, :] < jnp.asarray(v)[:, None]
    if len(shape) == 2:
        if shape != (batch, time):
            raise layer_error(kind, f"mask must have shape ({batch}, {time}), got {shape}")
        if is_concrete(v) and bool(np.all(np.asarray(v) > 0)):
            return None  # no padding
        return jnp.asarray(v) > 0
    raise layer_error(
        kind,
        f"the second input must be lengths (batch,) or a mask (batch, time), got shape {shape}",
    )


def _shape(leaf) -> tuple[int, ...]:
    """The shape of a carry leaf; one without a ``shape`` (a Python number) is a scalar."""
    shape = getattr(leaf, "shape", None)
    return tuple(shape) if shape is not None else tuple(np.shape(leaf))


def check_carry(kind: str, expected, given):
    """Check an initial carry against the expected structure and shapes; cast its dtype.

    Args:
      kind: the layer's name, for error messages.
      expected: a carry of the right structure, shapes and dtypes (the cell's zeros).
      given: the initial carry passed in.

    Returns:
      ``given`` with each leaf cast to the dtype of the matching leaf of ``expected``.

    Raises:
      LayerError: if the structures or the shapes differ (a leaf without a shape, such as
        a Python float, counts as shape ``()``).
    """
    exp_struct = jax.tree.structure(expected)
    try:
        given_struct = jax.tree.structure(given)
    except TypeError:
        given_struct = None
    # PyTreeDef comes from jaxlib's C++ extension, which ships no stubs
    if given_struct != exp_struct:  # type: ignore[operator]
        raise layer_error(
            kind,
            f"initial carry must look like {jax.tree.map(lambda a: tuple(a.shape), expected)}, "
            f"got {jax.tree.map(_shape, given)}",
        )
    for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(given), strict=True):
        if _shape(g) != tuple(e.shape):
            raise layer_error(
                kind,
                f"initial carry has shapes {jax.tree.map(_shape, given)}, expected "
                f"{jax.tree.map(_shape, expected)}",
            )
    return jax.tree.map(lambda e, g: jnp.asarray(g).astype(e.dtype), expected, given)


def sequence_spec(kind: str, input_spec):
    """Normalise a recurrent layer's input spec and check its sequence part.

    Args:
      kind: the layer's name, for error messages.
      input_spec: the spec of any input form :func:`split_input` takes, as shapes or specs
        (a bare shape is a float32 sequence; an initial carry may be a dict of specs).

    Returns:
      ``(spec, seq)``: the whole normalised spec and the sequence's own spec.

    Raises:
      LayerError: if the sequence part is not a single rank-3 spec.
      LayerTypeError: if the sequence is not floating point.
    """
    is_shape = isinstance(input_spec, (tuple, list)) and all(isinstance(d, int) for d in input_spec)
    is_tuple = isinstance(input_spec, (tuple, list)) and not is_shape
    spec: Any
    if is_tuple and len(input_spec) == 2 and isinstance(input_spec[1], dict):
        spec = (as_spec(input_spec[0]), jax.tree.map(as_spec, input_spec[1]))
    elif is_tuple and len(input_spec) == 3 and input_spec[1] is None:
        spec = (as_spec(input_spec[0]), None, jax.tree.map(as_spec, input_spec[2]))
    elif is_tuple and len(input_spec) == 3:
        # the initial carry may be a dict of specs, which as_spec does not take
        spec = (*as_spec(tuple(input_spec[:2])), jax.tree.map(as_spec, input_spec[2]))
    else:
        spec = as_spec(input_spec)
    seq = spec[0] if isinstance(spec, tuple) else spec
    if not isinstance(seq, jax.ShapeDtypeStruct):
        raise layer_error(kind, f"expected a sequence spec, got {seq!r}")
    check_sequence(kind, seq)
    return spec, seq


def stateful_carry(kind: str, state, batch: int):
    """The carry a stateful layer keeps in its state, checked against the batch size.

    Args:
      kind: the layer's name, for error messages.
      state: the layer's state, ``{"carry": ...}``.
      batch: the batch size of the current input.

    Returns:
      ``state["carry"]``.

    Raises:
      LayerError: if the state has no carry or was initialised for another batch size.
    """
    carry = param(state, "carry", kind)
    stored = jax.tree.leaves(carry)[0].shape[0]
    if stored != batch:
        raise layer_error(
            kind,
            f"this stateful layer was initialised for batch size {stored} but got {batch}; "
            f"initialise the state for the new batch size (layer.init with that input spec)",
        )
    return carry


def check_no_carry(kind: str, stateful: bool, initial_carry) -> None:
    """Refuse an initial carry passed to a stateful layer (it starts from its state).

    Args:
      kind: the layer's name, for the error message.
      stateful: whether the layer is stateful.
      initial_carry: the initial carry passed in, or None.

    Raises:
      LayerError: if the layer is stateful and an initial carry was given.
    """
    if stateful and initial_carry is not None:
        raise layer_error(
            kind, "a stateful layer starts from the carry in its state; pass no initial carry"
        )
