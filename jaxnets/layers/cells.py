"""Recurrent cells: one step of SimpleRNN, LSTM and GRU, with fused gate weights.

A :class:`Cell`'s weights are stored fused, one matrix for all gates (``kernel (in, G*H)``,
``recurrent_kernel (H, G*H)``, as Keras); ``docs/recurrent.md`` gives the gate layouts and
the mapping to flax's cells. :func:`jaxnets.RNN` runs a cell over time.

Example (a cell's fused weights and an LSTM's two-part carry):
    >>> import jax, jaxnets as jn
    >>> cell = jn.LSTM(3)
    >>> {k: v.shape for k, v in cell.init(jax.random.key(0), 2).items()}
    {'kernel': (2, 12), 'recurrent_kernel': (3, 12), 'bias': (12,)}
    >>> sorted(cell.initial_carry((4,)))
    ['c', 'h']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnets import _impl
from jaxnets.core import Params, along_last, layer_error, param
from jaxnets.core.arguments import count, number
from jaxnets.layers import _checks
from jaxnets.layers._checks import initializer, optional_flag, resolve

Array = jax.Array
Carry = Any
Initializer = Callable[..., Array]

_impl.define_op("lstm_sequence", None, layer="LSTM")


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


def _check_cell(kind: str, features, inits: dict, dtype, fused) -> int:
    """Check a cell constructor's shared arguments; returns ``features`` as an int."""
    features = count(kind, "features", features)
    for what, init in inits.items():
        initializer(kind, what, init, optional=what != "bias_init")
    _checks.param_dtype(kind, dtype)
    optional_flag(kind, "fused", fused)
    return features


def check_cell(where: str, what: str, cell) -> Cell:
    """Raise a TypeError unless ``cell`` is a :class:`Cell` (``LSTM(64)``, not a Layer).

    Args:
      where: the layer or function, the start of the message.
      what: the argument's name.
      cell: what came.

    Returns:
      ``cell``.
    """
    if not isinstance(cell, Cell):
        raise TypeError(
            f"{where}: {what} must be a Cell such as LSTM(64), GRU(64) or SimpleRNN(64), got "
            f"{cell!r:.60} (a {type(cell).__name__})"
        )
    return cell


def _per_gate(init: Initializer, gates: int) -> Initializer:
    """Initialise a fused ``(n, gates * H)`` matrix as ``gates`` independent ``(n, H)`` blocks."""

    def fused(key, shape, dtype=jnp.float32):
        n, total = shape
        keys = jax.random.split(key, gates)
        return jnp.concatenate([init(k, (n, total // gates), dtype) for k in keys], axis=1)

    return fused


def _zeros_carry(names: tuple[str, ...], features: int):
    def initial_carry(batch_shape, dtype=jnp.float32):
        return {n: jnp.zeros((*tuple(batch_shape), features), dtype) for n in names}

    return initial_carry


def _gated_cell(
    kind: str,
    gates: int,
    features: int,
    init: Callable,
    combine: Callable,
    carry_names: tuple[str, ...],
    recurrent_bias: bool,
    fused: bool | None,
    op: str | None = None,
    impl: str = "auto",
) -> Cell:
    """A cell whose gate ``k`` gets ``x @ W_k + b_k`` and ``h @ U_k (+ c_k)``, where
    ``W_k`` is column block ``k`` of ``kernel`` (and so on); ``combine(carry, zx, zh)``
    turns the two lists of ``gates`` pre-activations into ``(new_carry, y)``.

    ``fused=True``: one product ``x @ kernel`` for all gates and all time steps before the
    loop, and one ``h @ recurrent_kernel`` per step, sliced per gate (fewest, largest
    products: good for GPUs and TPUs). ``fused=False``: per step, one product per gate with
    column blocks cut once before the loop (no slicing of activations inside the loop,
    which XLA:CPU runs faster: measured in ``benchmarks/bench_lstm.py``). ``None`` picks
    ``fused`` unless the params live on the CPU. The params are the same either way.
    """
    H = features  # noqa: N806
    width = gates * H

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
            "bias": param(params, "bias", kind, (width,)),
        }
        if recurrent_bias:
            p["recurrent_bias"] = param(params, "recurrent_bias", kind, (width,))
        return p

    def prepare(params, in_features):
        p = checked(params, in_features)
        if use_fused(p):
            return p
        return {name: split_gates(v) for name, v in p.items()}

    def per_gate(prepared) -> bool:
        return isinstance(prepared["kernel"], list)

    def split_gates(v):
        # one split (its gradient is one concatenation), not one slice per gate
        return jnp.split(v, gates, axis=-1) if gates > 1 else [v]

    def project(prepared, x):
        if per_gate(prepared):
            return x
        bias = along_last(prepared["bias"].astype(x.dtype), x.ndim)
        return jnp.dot(x, prepared["kernel"].astype(x.dtype)) + bias

    def step(prepared, carry, xp):
        h = carry["h"]
        dtype = h.dtype
        if not per_gate(prepared):
            zh_all = jnp.dot(h, prepared["recurrent_kernel"].astype(dtype))
            if recurrent_bias:
                zh_all = zh_all + along_last(prepared["recurrent_bias"].astype(dtype), h.ndim)
            zx, zh = split_gates(xp), split_gates(zh_all)
        else:
            zx, zh = [], []
            for k in range(gates):
                b = along_last(prepared["bias"][k].astype(dtype), h.ndim)
                zx.append(jnp.dot(xp, prepared["kernel"][k].astype(dtype)) + b)
                z = jnp.dot(h, prepared["recurrent_kernel"][k].astype(dtype))
                if recurrent_bias:
                    z = z + along_last(prepared["recurrent_bias"][k].astype(dtype), h.ndim)
                zh.append(z)
        return combine(carry, zx, zh)

    initial_carry = _zeros_carry(carry_names, H)
    return Cell(init, prepare, project, step, initial_carry, H, kind, op, impl)


def SimpleRNN(
    features: int,
    *,
    activation: str | Callable = "tanh",
    kernel_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
    param_dtype=jnp.float32,
    fused: bool | None = None,
) -> Cell:
    """The Elman cell ``h' = activation(x @ kernel + h @ recurrent_kernel + bias)``.

    Args:
      features: the size ``H`` of the carry and output.
      activation: the nonlinearity, a name ("tanh") or a function.
      kernel_init: the input kernel's initialiser (default Glorot uniform).
      recurrent_init: the recurrent kernel's initialiser (default orthogonal).
      bias_init: the bias initialiser (default zeros).
      param_dtype: the dtype of the params.
      fused: True: the input product of every step runs once before the time loop; False:
        one product per step; None: False when the params live on the CPU, else True.

    Returns:
      The cell (run it with :func:`jaxnets.RNN`); its params are ``kernel`` (in, H),
      ``recurrent_kernel`` (H, H) and ``bias`` (H,), and its carry is ``{"h"}``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> cell = jn.SimpleRNN(3)
        >>> params = cell.init(jax.random.key(0), 2)
        >>> carry, y = cell(params, cell.initial_carry((4,)), jnp.ones((4, 2)))
        >>> y.shape, sorted(carry)
        ((4, 3), ['h'])
    """
    kind = "SimpleRNN"
    inits = {"kernel_init": kernel_init, "recurrent_init": recurrent_init, "bias_init": bias_init}
    features = _check_cell(kind, features, inits, param_dtype, fused)
    act = resolve(kind, activation)
    kernel_init = kernel_init or jax.nn.initializers.glorot_uniform()
    recurrent_init = recurrent_init or jax.nn.initializers.orthogonal()

    def init(key, in_features):
        k1, k2, k3 = jax.random.split(key, 3)
        return {
            "kernel": kernel_init(k1, (in_features, features), param_dtype),
            "recurrent_kernel": recurrent_init(k2, (features, features), param_dtype),
            "bias": bias_init(k3, (features,), param_dtype),
        }

    def combine(carry, zx, zh):
        h = act(zx[0] + zh[0])
        return {"h": h}, h

    return _gated_cell(kind, 1, features, init, combine, ("h",), False, fused)


def LSTM(
    features: int,
    *,
    forget_bias: float = 1.0,
    kernel_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
    param_dtype=jnp.float32,
    fused: bool | None = None,
    impl: str = "auto",
) -> Cell:
    """The long short-term memory cell (Hochreiter & Schmidhuber 1997), gates ``i, f, g, o``.

    ``z = x @ kernel + h @ recurrent_kernel + bias``, split in four: ``i, f, o =
    sigmoid(.)``, ``g = tanh(.)``; ``c' = f * c + i * g``; ``h' = o * tanh(c')``. The
    forget-gate bias starts at ``forget_bias``. ``docs/recurrent.md`` maps the params to
    flax's per-gate ones.

    Args:
      features: the size ``H`` of the carry and output.
      forget_bias: the forget gate's initial bias.
      kernel_init: the input kernel's initialiser (default Glorot uniform).
      recurrent_init: the initialiser of each gate's recurrent block (default orthogonal).
      bias_init: the bias initialiser (the forget bias is added to it).
      param_dtype: the dtype of the params.
      fused: the scanned step's form (see :func:`_gated_cell`); None chooses by platform.
      impl: how a whole unpadded sequence runs: "auto", "reference" (scan the step),
        "chunked" (a hand-written backward pass, which "auto" picks on the CPU under
        reverse-mode differentiation) or "chunked_forward" (``docs/implementations.md``).

    Returns:
      The cell (run it with :func:`jaxnets.RNN`).

    Example:
        >>> import jax, jaxnets as jn
        >>> params = jn.LSTM(2).init(jax.random.key(0), 3)
        >>> params["bias"].tolist()
        [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    """
    kind = "LSTM"
    inits = {"kernel_init": kernel_init, "recurrent_init": recurrent_init, "bias_init": bias_init}
    features = _check_cell(kind, features, inits, param_dtype, fused)
    forget_bias = number(kind, "forget_bias", forget_bias)
    _impl.check_impl("lstm_sequence", impl)
    kernel_init = kernel_init or jax.nn.initializers.glorot_uniform()
    recurrent_init = _per_gate(recurrent_init or jax.nn.initializers.orthogonal(), 4)
    H = features  # noqa: N806

    def init(key, in_features):
        k1, k2, k3 = jax.random.split(key, 3)
        bias = bias_init(k3, (4 * H,), param_dtype)
        return {
            "kernel": kernel_init(k1, (in_features, 4 * H), param_dtype),
            "recurrent_kernel": recurrent_init(k2, (H, 4 * H), param_dtype),
            "bias": bias.at[H : 2 * H].add(jnp.asarray(forget_bias, param_dtype)),
        }

    def combine(carry, zx, zh):
        i, f, g, o = (a + b for a, b in zip(zx, zh, strict=True))
        c = jax.nn.sigmoid(f) * carry["c"] + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return {"c": c, "h": h}, h

    return _gated_cell(kind, 4, H, init, combine, ("c", "h"), False, fused, "lstm_sequence", impl)


def GRU(
    features: int,
    *,
    kernel_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
    param_dtype=jnp.float32,
    fused: bool | None = None,
) -> Cell:
    """The gated recurrent unit (Cho et al. 2014), reset-after form, gates ``z, r, n``.

    ``z = sigmoid(x W_z + b_z + h U_z + c_z)``, ``r`` alike,
    ``n = tanh(x W_n + b_n + r * (h U_n + c_n))``, ``h' = z * h + (1 - z) * n``, with
    ``W = kernel``, ``U = recurrent_kernel``, ``b = bias``, ``c = recurrent_bias``.

    Args:
      features: the size ``H`` of the carry and output.
      kernel_init: the input kernel's initialiser (default Glorot uniform).
      recurrent_init: the initialiser of each gate's recurrent block (default orthogonal).
      bias_init: the initialiser of both ``bias`` and ``recurrent_bias`` (default zeros).
      param_dtype: the dtype of the params.
      fused: True: one input product for all gates and steps before the time loop and one
        sliced recurrent product per step; False: one product per gate and step; None:
        False when the params live on the CPU, else True. The params are the same.

    Returns:
      The cell (run it with :func:`jaxnets.RNN`); its params are ``kernel`` (in, 3H),
      ``recurrent_kernel`` (H, 3H), ``bias`` (3H,) and ``recurrent_bias`` (3H,), gate
      blocks in the order ``z, r, n``; its carry is ``{"h"}``.

    Example:
        >>> import jax, jaxnets as jn
        >>> params = jn.GRU(4).init(jax.random.key(0), 3)
        >>> {k: v.shape for k, v in sorted(params.items())}
        {'bias': (12,), 'kernel': (3, 12), 'recurrent_bias': (12,), 'recurrent_kernel': (4, 12)}
    """
    kind = "GRU"
    inits = {"kernel_init": kernel_init, "recurrent_init": recurrent_init, "bias_init": bias_init}
    features = _check_cell(kind, features, inits, param_dtype, fused)
    kernel_init = kernel_init or jax.nn.initializers.glorot_uniform()
    recurrent_init = _per_gate(recurrent_init or jax.nn.initializers.orthogonal(), 3)
    H = features  # noqa: N806

    def init(key, in_features):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        return {
            "kernel": kernel_init(k1, (in_features, 3 * H), param_dtype),
            "recurrent_kernel": recurrent_init(k2, (H, 3 * H), param_dtype),
            "bias": bias_init(k3, (3 * H,), param_dtype),
            "recurrent_bias": bias_init(k4, (3 * H,), param_dtype),
        }

    def combine(carry, zx, zh):
        z = jax.nn.sigmoid(zx[0] + zh[0])
        r = jax.nn.sigmoid(zx[1] + zh[1])
        n = jnp.tanh(zx[2] + r * zh[2])
        h = z * carry["h"] + (1.0 - z) * n
        return {"h": h}, h

    return _gated_cell(kind, 3, H, init, combine, ("h",), True, fused)
