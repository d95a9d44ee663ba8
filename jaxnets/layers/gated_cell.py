"""The :class:`Cell` type and the gated cell that SimpleRNN, LSTM and GRU are built on.

A gated cell stores its weights fused, one matrix for all gates (``kernel (in, G*H)``,
``recurrent_kernel (H, G*H)``, as Keras); :mod:`jaxnets.layers.cells` defines the cells.

Example:
    >>> import jax, jaxnets as jn
    >>> from jaxnets.layers.gated_cell import Cell
    >>> isinstance(jn.GRU(3), Cell), jn.GRU(3).features
    (True, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnets import _impl
from jaxnets.core import Params, along_last, layer_error, param

Array = jax.Array
Carry = Any
Initializer = Callable[..., Array]


class Cell(NamedTuple):
    """One recurrent step, in a form that lets a layer choose where the input product runs.

    Attributes:
      init: ``init(key, in_features) -> params``.
      prepare: ``prepare(params, in_features) -> prepared``: checks the params and puts
        them in the form the two functions below use (run once, outside the time loop).
      project: ``project(prepared, x) -> xp`` for a whole sequence: the input's
        contribution to the gates, when the cell computes it before the loop (``fused``),
        else ``x`` itself.
      step: ``step(prepared, carry, xp_t) -> (new_carry, y_t)`` for one time step.
      initial_carry: ``initial_carry(batch_shape, dtype) -> carry`` of zeros.
      features: the size ``H`` of the output ``y_t``.
      kind: the display name ("LSTM").
      op: the registered op (``jaxnets._impl``) whose implementations may run a whole
        unpadded sequence instead of scanning ``step`` ("lstm_sequence"), or None.
      impl: the implementation of ``op`` to use: "auto", "reference" (scan ``step``) or
        a registered name.
    """

    init: Callable[[Array, int], Params]
    prepare: Callable[[Params, int], Any]
    project: Callable[[Any, Array], Array]
    step: Callable[[Any, Carry, Array], tuple[Carry, Array]]
    initial_carry: Callable[[tuple[int, ...], Any], Carry]
    features: int
    kind: str
    op: str | None = None
    impl: str = "auto"

    def __call__(self, params: Params, carry: Carry, x: Array) -> tuple[Carry, Array]:
        """One step on a raw input ``x`` ``(batch..., in)``: ``(new_carry, y)``."""
        prepared = self.prepare(params, x.shape[-1])
        return self.step(prepared, carry, self.project(prepared, x))


def check_cell(where: str, what: str, cell) -> Cell:
    """Raise a TypeError unless ``cell`` is a :class:`Cell` (``LSTM(64)``, not a Layer).

    Args:
      where: the layer or function, the start of the message.
      what: the argument's name.
      cell: what came.

    Returns:
      ``cell``.

    Example:
        >>> import jaxnets as jn
        >>> from jaxnets.layers.gated_cell import check_cell
        >>> check_cell("RNN", "cell", jn.LSTM(2)).kind
        'LSTM'
    """
    if not isinstance(cell, Cell):
        raise TypeError(
            f"{where}: {what} must be a Cell such as LSTM(64), GRU(64) or SimpleRNN(64), got "
            f"{cell!r:.60} (a {type(cell).__name__})"
        )
    return cell


def per_gate(init: Initializer, gates: int) -> Initializer:
    """Initialise a fused ``(n, gates * H)`` matrix as ``gates`` independent ``(n, H)`` blocks.

    Args:
      init: the initialiser of one block.
      gates: the number of blocks.

    Returns:
      The initialiser of the fused matrix.

    Example:
        >>> import jax
        >>> from jaxnets.layers.gated_cell import per_gate
        >>> per_gate(jax.nn.initializers.orthogonal(), 3)(jax.random.key(0), (4, 12)).shape
        (4, 12)
    """

    def fused(key, shape, dtype=jnp.float32):
        n, total = shape
        keys = jax.random.split(key, gates)
        return jnp.concatenate([init(k, (n, total // gates), dtype) for k in keys], axis=1)

    return fused


def _zeros_carry(names: tuple[str, ...], features: int):
    def initial_carry(batch_shape, dtype=jnp.float32):
        return {n: jnp.zeros((*tuple(batch_shape), features), dtype) for n in names}

    return initial_carry


def _split(v, n: int):
    # one split (its gradient is one concatenation), not one slice per gate
    return jnp.split(v, n, axis=-1) if n > 1 else [v]


def gated_cell(
    kind: str,
    gates: int,
    features: int,
    init: Callable,
    combine: Callable,
    carry_names: tuple[str, ...],
    *,
    recurrent_bias: bool,
    use_bias: bool,
    fused: bool | None,
    late: int = 0,
    op: str | None = None,
    impl: str = "auto",
) -> Cell:
    """A cell whose gate ``k`` gets ``x @ W_k (+ b_k)`` and ``h @ U_k (+ c_k)``.

    ``W_k`` is column block ``k`` of ``kernel`` (and so on). ``combine(carry, zx, zh,
    late_product)`` turns the pre-activations into ``(new_carry, y)``: ``zx`` has all
    ``gates`` input parts, ``zh`` the recurrent parts of the first ``gates - late`` gates,
    and ``late_product(k, v)`` gives ``v @ U_k`` for a late gate ``k`` (GRU's reset-before
    form multiplies ``r * h`` by ``U_n``; late gates take no recurrent bias).

    ``fused=True``: one product ``x @ kernel`` for all gates and all time steps before the
    loop, and one ``h @ recurrent_kernel`` per step, sliced per gate (fewest, largest
    products: good for GPUs and TPUs). ``fused=False``: per step, one product per gate with
    column blocks cut once before the loop (no slicing of activations inside the loop,
    which XLA:CPU runs faster: measured in ``benchmarks/bench_lstm.py``). ``None`` picks
    ``fused`` unless the params live on the CPU. The params are the same either way.

    Args:
      kind: the cell's display name.
      gates: the number of gate blocks ``G``.
      features: the size ``H``.
      init: ``init(key, in_features) -> params``.
      combine: as above.
      carry_names: the carry's keys (``("c", "h")``); ``"h"`` is the recurrent input.
      recurrent_bias: the params have ``recurrent_bias`` ``(G*H,)`` (when ``use_bias``).
      use_bias: the params have ``bias`` ``(G*H,)``.
      fused: as above.
      late: the number of last gates whose recurrent product ``combine`` makes itself.
      op: the registered whole-sequence op, or None.
      impl: the implementation of ``op``.

    Returns:
      The :class:`Cell`.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> cell = jn.GRU(2, reset_after=False)
        >>> sorted(cell.init(jax.random.key(0), 3))
        ['bias', 'kernel', 'recurrent_kernel']
    """
    H = features  # noqa: N806
    width = gates * H
    early = gates - late
    recurrent_bias = recurrent_bias and use_bias

    def use_fused(params) -> bool:
        return "cpu" not in _impl.platforms_of(params) if fused is None else fused

    def checked(params, in_features):
        kernel = param(params, "kernel", kind)
        if kernel.shape != (in_features, width):
            raise layer_error(
                kind,
                f"the input has {in_features} features but the kernel has shape "
                f"{tuple(kernel.shape)}; expected ({in_features}, {width})",
            )
        p = {
            "kernel": kernel,
            "recurrent_kernel": param(params, "recurrent_kernel", kind, (H, width)),
        }
        if use_bias:
            p["bias"] = param(params, "bias", kind, (width,))
        if recurrent_bias:
            p["recurrent_bias"] = param(params, "recurrent_bias", kind, (width,))
        return p

    def prepare(params, in_features):
        p = checked(params, in_features)
        if not use_fused(p):
            return {name: _split(v, gates) for name, v in p.items()}
        if late:
            blocks = _split(p["recurrent_kernel"], gates)
            p["recurrent_kernel"] = jnp.concatenate(blocks[:early], axis=-1)
            p["recurrent_late"] = blocks[early:]
        return p

    def is_per_gate(prepared) -> bool:
        return isinstance(prepared["kernel"], list)

    def project(prepared, x):
        if is_per_gate(prepared):
            return x
        y = jnp.dot(x, prepared["kernel"].astype(x.dtype))
        if use_bias:
            y = y + along_last(prepared["bias"].astype(x.dtype), x.ndim)
        return y

    def step(prepared, carry, xp):
        h = carry["h"]
        dtype = h.dtype

        def bias(name, k=None):
            b = prepared[name] if k is None else prepared[name][k]
            return along_last(b.astype(dtype), h.ndim)

        if not is_per_gate(prepared):
            zh_all = jnp.dot(h, prepared["recurrent_kernel"].astype(dtype))
            if recurrent_bias:
                zh_all = zh_all + bias("recurrent_bias")
            zx, zh = _split(xp, gates), _split(zh_all, early)

            def late_product(k, v):
                return jnp.dot(v, prepared["recurrent_late"][k - early].astype(dtype))

        else:
            zx, zh = [], []
            for k in range(gates):
                z = jnp.dot(xp, prepared["kernel"][k].astype(dtype))
                zx.append(z + bias("bias", k) if use_bias else z)
            for k in range(early):
                z = jnp.dot(h, prepared["recurrent_kernel"][k].astype(dtype))
                zh.append(z + bias("recurrent_bias", k) if recurrent_bias else z)

            def late_product(k, v):
                return jnp.dot(v, prepared["recurrent_kernel"][k].astype(dtype))

        return combine(carry, zx, zh, late_product)

    initial_carry = _zeros_carry(carry_names, H)
    return Cell(init, prepare, project, step, initial_carry, H, kind, op, impl)
