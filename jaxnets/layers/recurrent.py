"""Recurrent layers: a cell scanned over time (RNN), stacked cells, and bidirectional ones.

Inputs are batch-major ``(batch, time, features)``, optionally with lengths or a mask and
an initial carry (:mod:`jaxnets.layers.sequences`); a padded step changes neither the
carry nor the last output, and its output is zero. ``docs/recurrent.md`` has the whole
story: the input forms, padding, ``stateful``, gate layouts and initialisers.

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> layer = jn.RNN(jn.LSTM(4), return_sequences=False)
    >>> spec, params, _ = layer.init(jax.random.key(0), (2, 5, 3))
    >>> spec.shape, params["kernel"].shape, params["recurrent_kernel"].shape
    ((2, 4), (3, 16), (4, 16))
    >>> x, lengths = jnp.ones((2, 5, 3)), jnp.array([5, 2])
    >>> y, _ = layer.apply(params, {}, (x, lengths), train=False)
    >>> y.shape
    (2, 4)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import jax
import jax.numpy as jnp

from jaxnets.core import Layer, infer_output, param
from jaxnets.core.arguments import choice, count, flag
from jaxnets.layers._checks import check_name
from jaxnets.layers.cells import GRU, LSTM, Cell, SimpleRNN, check_cell
from jaxnets.layers.scan_cell import MASKED_OUTPUTS, ScanResult, scan, scan_cell
from jaxnets.layers.sequences import (
    check_carry,
    check_no_carry,
    check_sequence,
    sequence_spec,
    split_input,
    stateful_carry,
    valid_steps,
)

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "Cell",
    "ScanResult",
    "SimpleRNN",
    "StackedRNN",
    "scan_cell",
    "valid_steps",
]


def _check_options(where: str, unroll, name, masked_output, **flags) -> None:
    count(where, "unroll", unroll)
    check_name(where, name)
    choice(where, "masked_output", masked_output, MASKED_OUTPUTS)
    for key, value in flags.items():
        flag(where, key, value)


def RNN(
    cell: Cell,
    *,
    return_sequences: bool = True,
    return_carry: bool = False,
    reverse: bool = False,
    stateful: bool = False,
    unroll: int = 1,
    masked_output: str = "zero",
    name: str | None = None,
) -> Layer:
    """Run ``cell`` over time with ``jax.lax.scan``: ``(batch, time, in) -> (batch, time, H)``.

    Args:
      cell: a :class:`Cell` (``LSTM(256)``, ``GRU(64)``, ``SimpleRNN(32)``).
      return_sequences: the output of every step, else only the last valid one ``(batch, H)``.
      return_carry: output ``(y, final_carry)`` instead of ``y``.
      reverse: read the sequences backwards (each from its own last valid step); outputs keep
        their time positions.
      stateful: keep the final carry in ``state`` and start the next call from it.
      unroll: steps unrolled per loop iteration (``lax.scan``'s ``unroll``).
      masked_output: the output at a padded step: "zero" (the default) or "hold" (the
        previous step's output, as Keras's recurrent layers).
      name: the key of the params in the parent (default: the cell's kind, ``lstm_0``).

    The params are the cell's (``{"kernel", "recurrent_kernel", "bias"}``); see
    ``docs/recurrent.md`` for the accepted inputs (lengths, masks, initial carry).

    Returns:
      The layer.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> net = jn.serial(jn.Embedding(10, 4), jn.RNN(jn.GRU(8)), jn.Dense(10))
        >>> spec, params, _ = net.init(jax.random.key(0), jax.ShapeDtypeStruct((2, 7), jnp.int32))
        >>> spec.shape, sorted(params)
        ((2, 7, 10), ['dense_0', 'embedding_0', 'gru_0'])
    """
    check_cell("RNN", "cell", cell)
    flags = {"return_sequences": return_sequences, "return_carry": return_carry}
    _check_options("RNN", unroll, name, masked_output, reverse=reverse, stateful=stateful, **flags)
    kind = cell.kind

    def apply(params, state, x, *, key=None, train):
        seq, extra, initial = split_input(kind, x)
        check_sequence(kind, seq)
        check_no_carry(kind, stateful, initial)
        if stateful:
            initial = stateful_carry(kind, state, seq.shape[0])
        res = scan_cell(
            cell,
            params,
            seq,
            lengths_or_mask=extra,
            initial_carry=initial,
            reverse=reverse,
            unroll=unroll,
            sequences=return_sequences,
            masked_output=masked_output,
        )
        y = res.outputs if return_sequences else res.last
        new_state = {"carry": jax.lax.stop_gradient(res.carry)} if stateful else state
        return ((y, res.carry) if return_carry else y), new_state

    def init(key, input_spec):
        spec, seq = sequence_spec(kind, input_spec)
        params = cell.init(key, seq.shape[-1])
        state = {"carry": cell.initial_carry((seq.shape[0],), seq.dtype)} if stateful else {}
        return infer_output(apply, params, state, spec), params, state

    return Layer(init, apply, kind, name)


def StackedRNN(
    cells: Sequence[Cell],
    *,
    return_sequences: bool = True,
    return_carry: bool = False,
    stateful: bool = False,
    unroll: int = 1,
    masked_output: str = "zero",
    name: str | None = None,
) -> Layer:
    """Several recurrent layers in sequence, sharing the lengths or mask of the input.

    Each cell is scanned over the whole sequence before the next (so each layer's input
    product is one matrix product). The carry (initial, final, or in ``state`` when
    stateful) is a dict with the same keys as the params.

    Args:
      cells: the cells, first to last (a non-empty sequence of :class:`Cell`).
      return_sequences: the last layer's output at every step, else only at the last valid
        one ``(batch, H)``; the layers below always pass on every step.
      return_carry: output ``(y, final_carries)`` instead of ``y``.
      stateful: keep the final carries in ``state`` and start the next call from them.
      unroll: steps unrolled per loop iteration (``lax.scan``'s ``unroll``).
      masked_output: the output at a padded step: "zero" (the default) or "hold" (the
        previous step's output, as Keras's recurrent layers).
      name: the key of the layer in its parent.

    Returns:
      The layer; its params are ``{"layer_0": ..., "layer_1": ...}``, one cell's each.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> net = jn.StackedRNN([jn.LSTM(8), jn.LSTM(6)], return_carry=True)
        >>> spec, params, _ = net.init(jax.random.key(0), (2, 5, 3))
        >>> y_spec, carry_spec = spec
        >>> y_spec.shape, carry_spec["layer_1"]["h"].shape
        ((2, 5, 6), (2, 6))
    """
    kind = "StackedRNN"
    if isinstance(cells, Cell) or not isinstance(cells, Iterable) or isinstance(cells, str):
        shown = (
            f"a Cell ({cells.kind}); wrap it: [cell]" if isinstance(cells, Cell) else repr(cells)
        )
        raise TypeError(f"{kind}: cells must be a list of Cells, got {shown}")
    cells = list(cells)
    if not cells:
        raise ValueError(f"{kind}: cells must be a non-empty list of Cells, got []")
    for i, c in enumerate(cells):
        check_cell(kind, f"cells[{i}]", c)
    flags = {"return_sequences": return_sequences, "return_carry": return_carry}
    _check_options(kind, unroll, name, masked_output, stateful=stateful, **flags)
    names = [f"layer_{i}" for i in range(len(cells))]

    def initial_carries(batch, dtype):
        return {n: c.initial_carry((batch,), dtype) for n, c in zip(names, cells, strict=True)}

    def apply(params, state, x, *, key=None, train):
        seq, extra, initial = split_input(kind, x)
        check_sequence(kind, seq)
        check_no_carry(kind, stateful, initial)
        batch, time, _ = seq.shape
        valid = valid_steps(kind, extra, batch, time)
        expected = initial_carries(batch, seq.dtype)
        if stateful:
            initial = stateful_carry(kind, state, batch)
        carries = expected if initial is None else check_carry(kind, expected, initial)
        final = {}
        h = seq
        for i, (n, cell) in enumerate(zip(names, cells, strict=True)):
            sequences = return_sequences or i < len(cells) - 1
            p = param(params, n, kind)
            res = scan(cell, p, h, valid, carries[n], False, unroll, sequences, masked_output)
            final[n] = res.carry
            h = res.outputs if sequences else res.last
        new_state = {"carry": jax.lax.stop_gradient(final)} if stateful else state
        return ((h, final) if return_carry else h), new_state

    def init(key, input_spec):
        spec, seq = sequence_spec(kind, input_spec)
        params = {}
        features = seq.shape[-1]
        for i, (n, cell) in enumerate(zip(names, cells, strict=True)):
            params[n] = cell.init(jax.random.fold_in(key, i), features)
            features = cell.features
        state = {"carry": initial_carries(seq.shape[0], seq.dtype)} if stateful else {}
        return infer_output(apply, params, state, spec), params, state

    return Layer(init, apply, kind, name)


_MERGES = {
    "concat": lambda a, b: jnp.concatenate([a, b], axis=-1),
    "sum": lambda a, b: a + b,
    "ave": lambda a, b: (a + b) / 2,
    "mul": lambda a, b: a * b,
}


def Bidirectional(
    forward: Cell,
    backward: Cell | None = None,
    *,
    return_sequences: bool = True,
    return_carry: bool = False,
    merge: str = "concat",
    unroll: int = 1,
    masked_output: str = "zero",
    name: str | None = None,
) -> Layer:
    """One cell reads each sequence forwards, another backwards; outputs merged per step.

    The backward cell (by default a cell like ``forward`` with its own weights) reads each
    sequence from its *own* last valid step back to the first, so padding never enters it;
    its output at step ``t`` summarises ``x[t:length]``. Carries (initial and final) are
    ``{"forward", "backward"}``; a mask is allowed (steps are skipped), but "its own
    length" is meant for right padding.

    Args:
      forward: the cell that reads forwards.
      backward: the cell that reads backwards (default: ``forward`` again, with its own
        params).
      return_sequences: the merged outputs of every step, else (Keras' convention) the
        forward output at the last valid step merged with the backward output at step 0.
      return_carry: output ``(y, {"forward": carry, "backward": carry})`` instead of ``y``.
      merge: ``"concat"`` (features ``H_f + H_b``), ``"sum"``, ``"ave"`` or ``"mul"`` (the
        last three need equal sizes).
      unroll: steps unrolled per loop iteration (``lax.scan``'s ``unroll``).
      masked_output: the output at a padded step: "zero" (the default) or "hold" (the
        previous step's output, as Keras's recurrent layers).
      name: the key of the layer in its parent.

    Returns:
      The layer; its params are ``{"forward": ..., "backward": ...}``, one cell's each.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> layer = jn.Bidirectional(jn.LSTM(4))
        >>> spec, params, _ = layer.init(jax.random.key(0), (2, 5, 3))
        >>> spec.shape, sorted(params)
        ((2, 5, 8), ['backward', 'forward'])
    """
    check_cell("Bidirectional", "forward", forward)
    if backward is not None:
        check_cell("Bidirectional", "backward", backward)
    backward = forward if backward is None else backward
    choice("Bidirectional", "merge", merge, _MERGES)
    flags = {"return_sequences": return_sequences, "return_carry": return_carry}
    _check_options("Bidirectional", unroll, name, masked_output, **flags)
    if merge != "concat" and forward.features != backward.features:
        raise ValueError(
            f"Bidirectional: merge={merge!r} needs equal sizes, got {forward.features} and "
            f"{backward.features}"
        )
    kind = "Bidirectional"
    directions = (("forward", forward, False), ("backward", backward, True))
    combine = _MERGES[merge]

    def apply(params, state, x, *, key=None, train):
        seq, extra, initial = split_input(kind, x)
        check_sequence(kind, seq)
        batch, time, _ = seq.shape
        valid = valid_steps(kind, extra, batch, time)
        expected = {n: c.initial_carry((batch,), seq.dtype) for n, c, _ in directions}
        carries = expected if initial is None else check_carry(kind, expected, initial)
        results = {
            n: scan(
                c,
                param(params, n, kind),
                seq,
                valid,
                carries[n],
                rev,
                unroll,
                return_sequences,
                masked_output,
            )
            for n, c, rev in directions
        }
        fwd, bwd = results["forward"], results["backward"]
        y = combine(fwd.outputs, bwd.outputs) if return_sequences else combine(fwd.last, bwd.last)
        if return_carry:
            return (y, {n: r.carry for n, r in results.items()}), state
        return y, state

    def init(key, input_spec):
        spec, seq = sequence_spec(kind, input_spec)
        params = {
            n: c.init(jax.random.fold_in(key, i), seq.shape[-1])
            for i, (n, c, _) in enumerate(directions)
        }
        return infer_output(apply, params, {}, spec), params, {}

    return Layer(init, apply, kind, name)
