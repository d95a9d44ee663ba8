"""Scanning a recurrent cell over time: outputs, the last valid output and the final carry."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnets import _impl
from jaxnets.core import Params
from jaxnets.core.arguments import choice, count, flag
from jaxnets.layers.cells import Carry, Cell, check_cell
from jaxnets.layers.sequences import check_carry, check_sequence, valid_steps

Array = jax.Array
MASKED_OUTPUTS = ("zero", "hold")


class ScanResult(NamedTuple):
    """What :func:`scan_cell` returns."""

    outputs: Array | None  # (batch, time, H); zeros at invalid steps; None if not requested
    last: Array  # (batch, H): the output of the last valid step read
    carry: Carry  # the carry after the last valid step


def _last_valid(outputs, valid, reverse):
    """The output at each sequence's last valid step read (zeros if none is valid)."""
    if valid is None:
        return outputs[:, 0] if reverse else outputs[:, -1]
    time = valid.shape[1]
    order = valid if reverse else valid[:, ::-1]
    first = jnp.argmax(order, axis=1)  # the first valid step in reading order, reversed
    index = first if reverse else time - 1 - first
    picked = jnp.take_along_axis(outputs, index[:, None, None], axis=1)[:, 0]
    return jnp.where(jnp.any(valid, axis=1)[:, None], picked, jnp.zeros_like(picked))


def scan(
    cell: Cell, params, x, valid, carry, reverse, unroll, sequences, masked_output="zero"
) -> ScanResult:
    """:func:`scan_cell` on inputs already checked: the loop the recurrent layers share.

    The params are cast to the input's dtype. Without padding, a cell with a registered
    whole-sequence op (``cell.op``) may run that implementation instead of the scan.

    Args:
      cell: the cell.
      params: its params.
      x: the sequences ``(batch, time, features)``.
      valid: a boolean ``(batch, time)`` array of valid steps (:func:`valid_steps`), or
        None when every step is valid.
      carry: the carry to start from, already checked (:func:`check_carry`).
      reverse: read each sequence backwards from its own last valid step.
      unroll: steps unrolled per loop iteration.
      sequences: collect every step's output (else ``outputs`` is None).
      masked_output: the output at a padded step: "zero" or "hold" (the previous step's
        output, zeros before the first valid one: Keras's ``zero_output_for_mask=False``).

    Returns:
      A :class:`ScanResult`.
    """
    dtype = x.dtype
    params = jax.tree.map(lambda a: a.astype(dtype), params)
    p = cell.prepare(params, x.shape[-1])  # checks the params
    if valid is None and cell.op is not None:
        xs = jnp.swapaxes(x, 0, 1)  # time-major (T, B, ...)
        xs = xs[::-1] if reverse else xs
        whole = _impl.choose(cell.op, cell.impl, params, xs, carry, unroll).fn
        if whole is not None:
            ys, carry = whole(params, xs, carry, unroll)
            if not sequences:  # without padding the last output is the final h
                return ScanResult(None, ys[-1], carry)
            outputs = jnp.swapaxes(ys[::-1] if reverse else ys, 0, 1)
            return ScanResult(outputs, ys[-1], carry)
    batch = x.shape[0]
    xp = cell.project(p, jnp.swapaxes(x, 0, 1))  # time-major (T, B, ...)
    hold = masked_output == "hold" and valid is not None
    # the last output rides in the carry when the sequence of outputs is not kept, or when
    # a padded step repeats it
    last = None if sequences and not hold else jnp.zeros((batch, cell.features), dtype)
    v = None if valid is None else jnp.swapaxes(valid, 0, 1)

    def body(state, inputs):
        c, prev = state
        xp_t, v_t = inputs
        new_c, y = cell.step(p, c, xp_t)
        held = y
        if v_t is not None:

            def keep(new, old):
                return jnp.where(v_t.reshape((batch,) + (1,) * (new.ndim - 1)), new, old)

            new_c = jax.tree.map(keep, new_c, c)
            if prev is not None:
                held = keep(y, prev)
            y = held if hold else keep(y, jnp.zeros_like(y))
        return (new_c, held if prev is not None else None), (y if sequences else None)

    (carry, last), ys = jax.lax.scan(body, (carry, last), (xp, v), reverse=reverse, unroll=unroll)
    if not sequences:
        assert last is not None  # it rides in the carry when the outputs are not kept
        return ScanResult(None, last, carry)
    outputs = jnp.swapaxes(ys, 0, 1)
    return ScanResult(outputs, _last_valid(outputs, valid, reverse), carry)


def scan_cell(
    cell: Cell,
    params: Params,
    x: Array,
    *,
    lengths_or_mask: Array | None = None,
    initial_carry: Carry | None = None,
    reverse: bool = False,
    unroll: int = 1,
    sequences: bool = True,
    masked_output: str = "zero",
) -> ScanResult:
    """Run ``cell`` over ``x`` ``(batch, time, features)``: outputs, last output, final carry.

    The function under :func:`jaxnets.RNN`; padded steps are handled as
    ``docs/recurrent.md`` describes.

    Args:
      cell: the cell.
      params: its params.
      x: the sequences.
      lengths_or_mask: lengths ``(batch,)`` or a mask ``(batch, time)``; None: no padding.
      initial_carry: the carry to start from (default zeros).
      reverse: read each sequence backwards from its own last valid step.
      unroll: steps unrolled per loop iteration.
      sequences: collect every step's output (else ``outputs`` is None).
      masked_output: the output at a padded step: "zero" or "hold" (the previous one).

    Returns:
      A :class:`ScanResult`.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> cell = jn.GRU(3)
        >>> params = cell.init(jax.random.key(0), 2)
        >>> res = jn.layers.scan_cell(cell, params, jnp.ones((4, 6, 2)),
        ...                           lengths_or_mask=jnp.array([6, 3, 0, 1]))
        >>> res.outputs.shape, res.last.shape, res.carry["h"].shape
        ((4, 6, 3), (4, 3), (4, 3))
        >>> bool(jnp.all(res.outputs[1, 3:] == 0)), bool(jnp.all(res.last[2] == 0))
        (True, True)
    """
    check_cell("scan_cell", "cell", cell)
    count("scan_cell", "unroll", unroll)
    flag("scan_cell", "reverse", reverse)
    flag("scan_cell", "sequences", sequences)
    choice("scan_cell", "masked_output", masked_output, MASKED_OUTPUTS)
    kind = cell.kind
    check_sequence(kind, x)
    batch, time, _ = x.shape
    valid = valid_steps(kind, lengths_or_mask, batch, time)
    expected = cell.initial_carry((batch,), x.dtype)
    carry = expected if initial_carry is None else check_carry(kind, expected, initial_carry)
    return scan(cell, params, x, valid, carry, reverse, unroll, sequences, masked_output)
