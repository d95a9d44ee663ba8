"""Recurrent layers: SimpleRNN, LSTM and GRU cells scanned over time, stacked, bidirectional.

A **cell** (:class:`Cell`) is one step of a recurrence. Its weights are stored fused, one
matrix for all gates (``kernel (in, G*H)``, ``recurrent_kernel (H, G*H)``, as Keras), and it
computes in one of two ways, chosen by the cell's ``fused`` argument (same params, same
results): ``fused=True`` multiplies the inputs of all time steps by ``kernel`` in one
product before the loop and ``h`` by ``recurrent_kernel`` once per step (the fewest,
largest products: what GPUs and TPUs like); ``fused=False`` multiplies per gate inside the
loop, by column blocks of the fused matrices cut once before it, which XLA:CPU runs faster
(forward and backward of an LSTM language model measured about 1.2x faster on 2 shared
CPU cores). The default, ``None``, is ``fused`` except on the CPU; tests check that both
ways give the same outputs.

On the CPU, with the default ``fused=None``, an :func:`LSTM` over a sequence without
padding runs a third formulation of the same recurrence (``_lstm_sequence``, a
``jax.custom_vjp``): the time loop runs in up to 8 chunks of steps; each chunk's input
product is computed before its loop (while the previous chunk's loop runs), one ``(H, 4H)``
recurrent product per step, and a hand-written backward loop that computes only the gate
gradients (stored in place of the gate activations, in the buffer of the input product)
and ``dh``; the weight gradients are then large products over each chunk's steps. Its values
and gradients equal the scanned forms' to float32 rounding (tested). It made the train
step of an LSTM language model (``benchmarks/bench_lstm.py``) 1.25-1.4x faster than flax's
``nn.RNN(nn.LSTMCell)`` and 1.4-1.7x faster than the plain autodiff scan, mostly by
needing far less temporary memory (``benchmarks/RESULTS_CPU.md``).
Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``) does not go through a
``custom_vjp``: pass ``fused=False`` (or ``True``) to get the plain scan, which supports it.
Padded sequences (lengths or a mask with padding) always use the scan.

:func:`RNN` turns a cell into a layer that runs it with ``jax.lax.scan`` over the time axis
of a batch-major input ``(batch, time, features)``. :func:`StackedRNN` runs several cells
one after another (each layer scanned separately), :func:`Bidirectional` runs one cell
forwards and one backwards and merges them. :func:`scan_cell` is the plain function below
all three, for users who want the outputs, the last output and the final carry at once.

Optional inputs and the layer contract. ``serial`` passes only ``key`` and ``train`` to its
children, so everything a sequence needs besides the values travels *in the input*:

* ``x`` alone: ``(batch, time, features)``, every step valid;
* ``(x, lengths)``: ``lengths`` an integer vector ``(batch,)``; steps ``t >= lengths[b]``
  are padding;
* ``(x, mask)``: ``mask`` ``(batch, time)``; a step is valid where ``mask > 0`` (``True``
  or a positive number); a mask may have holes anywhere;
* ``(x, lengths_or_mask, initial_carry)``: also the carry to start from (pass
  ``lengths = time`` to use it without padding).

The final carry comes back as the second element of a tuple output when the layer is built
with ``return_carry=True`` (``y, carry = layer.apply(...)[0]``). With ``stateful=True`` the
carry lives in the layer's ``state`` instead (as Keras' ``stateful=True``): each call starts
from the carry the previous call ended with, which is what truncated backpropagation
through time needs, and which :func:`jaxnets.make_train_step` threads through unchanged.
The stored carry is cut from the gradient and fixes the batch size at ``init``; reset it
by re-initialising the state (``jax.tree.map(jnp.zeros_like, state)``).

Padding and masks. A padded (invalid) step changes neither the carry nor the last output,
and its output is **zero**. So ``return_sequences=False`` gives the output of the last
valid step (zeros for an empty sequence), and the final carry is the carry after the last
valid step. ``reverse=True`` scans from the end; since padded steps are skipped, each
sequence is read backwards *from its own last valid step*, and outputs stay at their time
positions (as flax's ``keep_order=True``). :func:`Bidirectional` relies on this.

Bad input. A wrong rank, a non-floating sequence, lengths or a mask of the wrong shape, an
integer-free ``lengths``, or an initial carry of the wrong structure or shape raise a
:class:`jaxnets.LayerError` naming the layer. Lengths outside ``[0, time]`` raise when they
are concrete (eager calls); under ``jit`` they cannot be inspected and act as if clipped to
``[0, time]`` (a negative length is an empty sequence, a longer one the full sequence).

Gate layouts (weights map one-to-one onto Keras and flax):

* ``LSTM``: ``kernel (in, 4H)``, ``recurrent_kernel (H, 4H)``, ``bias (4H,)``; gate order
  ``i, f, g, o`` (input, forget, cell candidate, output) as Keras. flax's ``LSTMCell``
  keeps one Dense per gate: ``kernel = concat([ii, if, ig, io] kernels, axis=1)``,
  ``recurrent_kernel = concat([hi, hf, hg, ho] kernels, axis=1)``, ``bias =
  concat([hi, hf, hg, ho] biases)`` (flax's input Denses have no bias). Carry ``{"c", "h"}``
  = flax's ``(c, h)``. The forget-gate bias starts at ``forget_bias=1.0`` (Jozefowicz et
  al. 2015; Keras' ``unit_forget_bias``).
* ``GRU`` in the reset-after form (Keras ``reset_after=True``, flax, cuDNN):
  ``n = tanh(x W_n + b_n + r * (h U_n + c_n))``, ``h' = z * h + (1 - z) * n``. Gate order
  ``z, r, n`` (update, reset, candidate) as Keras; ``kernel (in, 3H)``,
  ``recurrent_kernel (H, 3H)``, ``bias (3H,)`` (input side) and ``recurrent_bias (3H,)``
  (Keras' ``bias[1]``). From flax's ``GRUCell``: ``kernel = [iz, ir, in]``,
  ``recurrent_kernel = [hz, hr, hn]``, ``bias = [iz, ir, in] biases``, ``recurrent_bias =
  [0, 0, hn bias]``. Carry ``{"h"}``.
* ``SimpleRNN``: ``h' = activation(x W + h U + b)``; flax's ``SimpleCell``: ``kernel = i``,
  ``recurrent_kernel = h``, ``bias = i`` bias. Carry ``{"h"}``.

Default initialisers are Keras': Glorot-uniform input kernels, orthogonal recurrent kernels
(one orthogonal block per gate), zero biases.

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

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import activations, cpu
from jaxnets.core import (
    Layer,
    LayerTypeError,
    Params,
    along_last,
    as_spec,
    infer_output,
    is_concrete,
    layer_error,
    param,
)

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
      sequence: optional ``sequence(params, x, carry, unroll) -> (ys, new_carry) | None``
        for a whole time-major sequence ``x`` ``(time, batch, in)`` without padding: a
        faster formulation of the same recurrence, or None where the cell has none for
        this backend (the layer then scans ``step``).
    """

    init: Callable[[Array, int], Params]
    prepare: Callable[[Params, int], Any]
    project: Callable[[Any, Array], Array]
    step: Callable[[Any, Carry, Array], tuple[Carry, Array]]
    initial_carry: Callable[[tuple[int, ...], Any], Carry]
    features: int
    kind: str
    sequence: Callable[[Params, Array, Carry, int], tuple[Array, Carry] | None] | None = None

    def __call__(self, params: Params, carry: Carry, x: Array) -> tuple[Carry, Array]:
        """One step on a raw input ``x`` ``(batch..., in)``: ``(new_carry, y)``."""
        prepared = self.prepare(params, x.shape[-1])
        return self.step(prepared, carry, self.project(prepared, x))


# --------------------------------------------------------------------------- cells


def _check_features(kind: str, features: int) -> None:
    if not isinstance(features, int) or isinstance(features, bool) or features < 1:
        raise ValueError(f"{kind}: features must be a positive int, got {features!r}")


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
    sequence: Callable | None = None,
) -> Cell:
    """A cell whose gate ``k`` gets ``x @ W_k + b_k`` and ``h @ U_k (+ c_k)``, where
    ``W_k`` is column block ``k`` of ``kernel`` (and so on); ``combine(carry, zx, zh)``
    turns the two lists of ``gates`` pre-activations into ``(new_carry, y)``.

    ``fused=True``: one product ``x @ kernel`` for all gates and all time steps before the
    loop, and one ``h @ recurrent_kernel`` per step, sliced per gate (fewest, largest
    products: good for GPUs and TPUs). ``fused=False``: per step, one product per gate with
    column blocks cut once before the loop (no slicing of activations inside the loop,
    which XLA:CPU runs faster: measured in ``benchmarks/bench_lstm.py``). ``None`` picks
    ``fused`` unless the default backend is the CPU. The params are the same either way.
    """
    H = features  # noqa: N806
    width = gates * H

    def use_fused() -> bool:
        return jax.default_backend() != "cpu" if fused is None else fused

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
        if use_fused():
            return p
        return {name: split_gates(v) for name, v in p.items()}

    def split_gates(v):
        # one split (its gradient is one concatenation), not one slice per gate
        return jnp.split(v, gates, axis=-1) if gates > 1 else [v]

    def project(prepared, x):
        if not use_fused():
            return x
        bias = along_last(prepared["bias"].astype(x.dtype), x.ndim)
        return jnp.dot(x, prepared["kernel"].astype(x.dtype)) + bias

    def step(prepared, carry, xp):
        h = carry["h"]
        dtype = h.dtype
        if use_fused():
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

    def whole_sequence(params, x, carry, unroll):
        # the CPU formulation, only when the caller left the choice to the cell
        if sequence is None or fused is not None or not cpu.on_cpu() or x.shape[0] == 0:
            return None
        return sequence(checked(params, x.shape[-1]), x, carry, unroll)

    initial_carry = _zeros_carry(carry_names, H)
    return Cell(init, prepare, project, step, initial_carry, H, kind, whole_sequence)


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

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> cell = jn.SimpleRNN(3)
        >>> params = cell.init(jax.random.key(0), 2)
        >>> carry, y = cell(params, cell.initial_carry((4,)), jnp.ones((4, 2)))
        >>> y.shape, sorted(carry)
        ((4, 3), ['h'])
    """
    kind = "SimpleRNN"
    _check_features(kind, features)
    act = activations.get(activation)
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
) -> Cell:
    """The long short-term memory cell (Hochreiter & Schmidhuber 1997), gates ``i, f, g, o``.

    ``z = x @ kernel + h @ recurrent_kernel + bias``, split in four: ``i, f, o =
    sigmoid(.)``, ``g = tanh(.)``; ``c' = f * c + i * g``; ``h' = o * tanh(c')``. The
    forget-gate bias starts at ``forget_bias``. See the module docstring for the mapping to
    flax's per-gate parameters and of ``fused``.

    Example:
        >>> import jax, jaxnets as jn
        >>> params = jn.LSTM(2).init(jax.random.key(0), 3)
        >>> params["bias"].tolist()
        [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    """
    kind = "LSTM"
    _check_features(kind, features)
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

    def sequence(p, x, carry, unroll):
        ys, c, h = _lstm_sequence(
            unroll, p["kernel"], p["recurrent_kernel"], p["bias"], x, carry["c"], carry["h"]
        )
        return ys, {"c": c, "h": h}

    return _gated_cell(kind, 4, H, init, combine, ("c", "h"), False, fused, sequence)


def _lstm_gates(z):
    i, f, g, o = jnp.split(z, 4, axis=-1)
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def _lstm_loop(recurrent_kernel, bias, xw, c0, h0, keep, unroll):
    """The forward recurrence over ``xw = x @ kernel`` ``(T, B, 4H)``, time-major.

    Returns ``(c, h, hs, acts, cs)``; when ``keep`` (for the backward pass) the gate
    activations ``[i, f, g, o]`` of step ``t`` overwrite ``xw[t]`` once it is read (``acts``
    is that buffer: no second ``(T, B, 4H)`` array) and ``cs`` holds the cell states;
    otherwise both are None.
    """
    steps = xw.shape[0]
    hs = jnp.zeros((steps, *h0.shape), h0.dtype)
    cs = jnp.zeros((steps, *c0.shape), c0.dtype) if keep else None

    def body(t, state):
        c, h, buf, hs, cs = state
        z = jax.lax.dynamic_index_in_dim(buf, t, 0, keepdims=False) + along_last(bias, h.ndim)
        i, f, g, o = _lstm_gates(z + jnp.dot(h, recurrent_kernel))
        c = f * c + i * g
        h = o * jnp.tanh(c)
        hs = jax.lax.dynamic_update_index_in_dim(hs, h, t, 0)
        if keep:
            buf = jax.lax.dynamic_update_index_in_dim(
                buf, jnp.concatenate([i, f, g, o], axis=-1), t, 0
            )
            cs = jax.lax.dynamic_update_index_in_dim(cs, c, t, 0)
        return c, h, buf, hs, cs

    c, h, buf, hs, cs = jax.lax.fori_loop(0, steps, body, (c0, h0, xw, hs, cs), unroll=unroll)
    return c, h, hs, (buf if keep else None), cs


#: The CPU formulation runs the time loop in up to this many chunks (consecutive loops).
#: XLA:CPU runs independent operations concurrently: each chunk's input product
#: ``x[chunk] @ kernel`` runs on the second core while the previous chunk's loop runs, and
#: the backward pass's weight-gradient products are smaller and cache-friendlier per chunk
#: (a profile shows that most of them still run between two chunk loops, not beside them).
#: LSTM language-model train step, 2 quiet cores: 8 chunks 0.93-0.95 of the time of one
#: loop; 4 and 6 chunks about the same as 8, 12 and 16 slower.
_LSTM_CHUNKS = 8


def _chunks(steps: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: ``steps`` cut into ``min(_LSTM_CHUNKS, steps)`` nearly
    equal consecutive chunks."""
    n = min(_LSTM_CHUNKS, steps)
    edges = [round(k * steps / n) for k in range(n + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _lstm_chunks(kernel, recurrent_kernel, bias, x, c0, h0, keep, unroll):
    """The forward recurrence over ``x`` chunk by chunk: ``(hs, c, h, acts, cs)``, where
    ``acts`` and ``cs`` are lists with one buffer per chunk (None each unless ``keep``).
    Each chunk's input product ``x[chunk] @ kernel`` depends only on ``x``, so XLA can
    compute it while the previous chunk's loop runs."""
    c, h = c0, h0
    hs, acts, cs = [], [], []
    for t0, t1 in _chunks(x.shape[0]):
        c, h, hs_k, acts_k, cs_k = _lstm_loop(
            recurrent_kernel, bias, jnp.dot(x[t0:t1], kernel), c, h, keep, unroll
        )
        hs.append(hs_k)
        acts.append(acts_k)
        cs.append(cs_k)
    hs = jnp.concatenate(hs, axis=0) if len(hs) > 1 else hs[0]
    return hs, c, h, acts, cs


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _lstm_sequence(unroll, kernel, recurrent_kernel, bias, x, c0, h0):
    """An LSTM over a whole time-major sequence ``x`` ``(T, B, in)``: ``(hs, c, h)``.

    The CPU formulation (same values as scanning :func:`LSTM`'s step). Forward: one input
    product ``x @ kernel`` per chunk of steps (:func:`_chunks`) before its loop, one
    ``h @ recurrent_kernel`` ``(H, 4H)`` per step. Backward (hand-written): the loop
    computes only the gate gradients ``dz`` and ``dh = dz @ recurrent_kernel.T`` per step;
    the weight gradients are then large products over each chunk's steps
    (``h_prev.T @ dz``, ``x.T @ dz``), summed over the chunks. The
    gate activations are kept in the buffer of the chunk's input product and overwritten
    in place by ``dz``, so the only ``(T, B, 4H)`` arrays are those buffers (besides them:
    the outputs and the cell states, ``(T, B, H)`` each).
    """
    hs, c, h, _, _ = _lstm_chunks(kernel, recurrent_kernel, bias, x, c0, h0, False, unroll)
    return hs, c, h


def _lstm_sequence_fwd(unroll, kernel, recurrent_kernel, bias, x, c0, h0):
    hs, c, h, acts, cs = _lstm_chunks(kernel, recurrent_kernel, bias, x, c0, h0, True, unroll)
    return (hs, c, h), (kernel, recurrent_kernel, x, c0, h0, hs, acts, cs)


def _lstm_backward_loop(recurrent_t, acts, cs, c_before, d_hs, dc, dh, unroll):
    """The backward recurrence over one chunk: ``(dc, dh, dz)``, with ``dz`` ``(T, B, 4H)``
    written in place over ``acts``; ``c_before`` is the cell state before the chunk."""
    steps = acts.shape[0]

    def row(a, t):
        return jax.lax.dynamic_index_in_dim(a, t, 0, keepdims=False)

    def body(s, state):
        dc, dh, buf, a = state
        t = steps - 1 - s
        c = row(cs, t)
        c_prev = jnp.where(t == 0, c_before, row(cs, jnp.maximum(t - 1, 0)))
        dh = dh + row(d_hs, t)
        i, f, g, o = jnp.split(a, 4, axis=-1)
        tc = jnp.tanh(c)
        dc = dc + dh * o * (1 - tc * tc)
        dz = jnp.concatenate(
            [
                dc * g * i * (1 - i),
                dc * c_prev * f * (1 - f),
                dc * i * (1 - g * g),
                dh * tc * o * (1 - o),
            ],
            axis=-1,
        )
        buf = jax.lax.dynamic_update_index_in_dim(buf, dz, t, 0)
        # the next step's activations are read from the updated buffer (a use after the
        # update), so XLA updates it in place instead of copying it every step
        a = row(buf, jnp.maximum(t - 1, 0))
        return dc * f, jnp.dot(dz, recurrent_t), buf, a

    state = (dc, dh, acts, row(acts, steps - 1))
    dc, dh, dz, _ = jax.lax.fori_loop(0, steps, body, state, unroll=unroll)
    return dc, dh, dz


def _lstm_sequence_bwd(unroll, residuals, cotangents):
    kernel, recurrent_kernel, x, c0, h0, hs, acts, cs = residuals
    d_hs, dc, dh = cotangents
    recurrent_t, kernel_t = recurrent_kernel.T, kernel.T
    chunks = _chunks(x.shape[0])
    weight_grads = []  # per chunk, last chunk first
    d_x = [None] * len(chunks)
    for k in reversed(range(len(chunks))):
        t0, t1 = chunks[k]
        c_before = c0 if k == 0 else cs[k - 1][-1]
        dc, dh, dz = _lstm_backward_loop(
            recurrent_t, acts[k], cs[k], c_before, d_hs[t0:t1], dc, dh, unroll
        )
        # this chunk's weight gradients and dx do not depend on the next chunk's loop
        steps, batch, width = dz.shape
        dz = dz.reshape(steps * batch, width)
        h_prev = hs[t0 - 1 : t1 - 1] if t0 else jnp.concatenate([h0[None], hs[: t1 - 1]])
        weight_grads.append(
            (
                jnp.dot(x[t0:t1].reshape(steps * batch, -1).T, dz),
                jnp.dot(h_prev.reshape(steps * batch, -1).T, dz),
                dz.sum(axis=0),
            )
        )
        d_x[k] = jnp.dot(dz, kernel_t).reshape(steps, batch, -1)
    d_kernel, d_recurrent, d_bias = (
        functools.reduce(jnp.add, g) for g in zip(*weight_grads, strict=True)
    )
    d_x = jnp.concatenate(d_x, axis=0) if len(d_x) > 1 else d_x[0]
    return d_kernel, d_recurrent, d_bias, d_x, dc, dh


_lstm_sequence.defvjp(_lstm_sequence_fwd, _lstm_sequence_bwd)


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

    Example:
        >>> import jax, jaxnets as jn
        >>> params = jn.GRU(4).init(jax.random.key(0), 3)
        >>> {k: v.shape for k, v in sorted(params.items())}
        {'bias': (12,), 'kernel': (3, 12), 'recurrent_bias': (12,), 'recurrent_kernel': (4, 12)}
    """
    kind = "GRU"
    _check_features(kind, features)
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


# --------------------------------------------------------------------------- inputs


def _split_input(kind: str, x):
    """``x`` | ``(x, lengths_or_mask)`` | ``(x, lengths_or_mask, initial_carry)``."""
    if isinstance(x, (tuple, list)):
        if len(x) not in (2, 3):
            raise layer_error(
                kind,
                f"expected x, (x, lengths_or_mask) or (x, lengths_or_mask, initial_carry); "
                f"got a tuple of {len(x)}",
            )
        return x[0], x[1], (x[2] if len(x) == 3 else None)
    return x, None, None


def _check_sequence(kind: str, x) -> None:
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
    """A boolean ``(batch, time)`` array of valid steps from lengths or a mask, or None
    when there is no padding (no lengths or mask, or concrete ones that keep every step).

    Concrete lengths outside ``[0, time]`` raise; traced ones act as if clipped.
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


def _check_carry(kind: str, expected, given):
    """Check an initial carry against the expected structure and shapes; cast its dtype."""
    exp_struct = jax.tree.structure(expected)
    try:
        given_struct = jax.tree.structure(given)
    except TypeError:
        given_struct = None
    if given_struct != exp_struct:
        raise layer_error(
            kind,
            f"initial carry must look like {jax.tree.map(lambda a: tuple(a.shape), expected)}, "
            f"got {jax.tree.map(lambda a: tuple(getattr(a, 'shape', ())), given)}",
        )
    for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(given), strict=True):
        if tuple(g.shape) != tuple(e.shape):
            raise layer_error(
                kind,
                f"initial carry has shapes "
                f"{jax.tree.map(lambda a: tuple(a.shape), given)}, expected "
                f"{jax.tree.map(lambda a: tuple(a.shape), expected)}",
            )
    return jax.tree.map(lambda e, g: jnp.asarray(g).astype(e.dtype), expected, given)


# --------------------------------------------------------------------------- the scan


class ScanResult(NamedTuple):
    """What :func:`scan_cell` returns."""

    outputs: Array  # (batch, time, H); zeros at invalid steps; None if not requested
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


def _scan(cell: Cell, params, x, valid, carry, reverse, unroll, sequences) -> ScanResult:
    dtype = x.dtype
    params = jax.tree.map(lambda a: a.astype(dtype), params)
    if valid is None and cell.sequence is not None:
        xs = jnp.swapaxes(x, 0, 1)  # time-major (T, B, ...)
        done = cell.sequence(params, xs[::-1] if reverse else xs, carry, unroll)
        if done is not None:
            ys, carry = done
            if not sequences:  # without padding the last output is the final h
                return ScanResult(None, ys[-1], carry)
            outputs = jnp.swapaxes(ys[::-1] if reverse else ys, 0, 1)
            return ScanResult(outputs, ys[-1], carry)
    p = cell.prepare(params, x.shape[-1])
    batch = x.shape[0]
    xp = cell.project(p, jnp.swapaxes(x, 0, 1))  # time-major (T, B, ...)
    # the last output rides in the carry only when the sequence of outputs is not kept
    last = None if sequences else jnp.zeros((batch, cell.features), dtype)
    v = None if valid is None else jnp.swapaxes(valid, 0, 1)

    def body(state, inputs):
        c, prev = state
        xp_t, v_t = inputs
        new_c, y = cell.step(p, c, xp_t)
        if v_t is not None:

            def keep(new, old):
                return jnp.where(v_t.reshape((batch,) + (1,) * (new.ndim - 1)), new, old)

            new_c = jax.tree.map(keep, new_c, c)
            y = keep(y, jnp.zeros_like(y))
            if prev is not None:
                y_last = keep(y, prev)
        elif prev is not None:
            y_last = y
        return (new_c, y_last if prev is not None else None), (y if sequences else None)

    (carry, last), ys = jax.lax.scan(body, (carry, last), (xp, v), reverse=reverse, unroll=unroll)
    if not sequences:
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
) -> ScanResult:
    """Run ``cell`` over ``x`` ``(batch, time, features)``: outputs, last output, final carry.

    The function under :func:`RNN`; padded steps are handled as described in the module
    docstring. ``sequences=False`` skips collecting the outputs (``outputs`` is None).

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
    kind = cell.kind
    _check_sequence(kind, x)
    batch, time, _ = x.shape
    valid = valid_steps(kind, lengths_or_mask, batch, time)
    expected = cell.initial_carry((batch,), x.dtype)
    carry = expected if initial_carry is None else _check_carry(kind, expected, initial_carry)
    return _scan(cell, params, x, valid, carry, reverse, unroll, sequences)


# --------------------------------------------------------------------------- layers


def _sequence_spec(kind: str, input_spec):
    is_shape = isinstance(input_spec, (tuple, list)) and all(isinstance(d, int) for d in input_spec)
    if isinstance(input_spec, (tuple, list)) and len(input_spec) == 3 and not is_shape:
        # the initial carry may be a dict of specs, which as_spec does not take
        spec = (*as_spec(tuple(input_spec[:2])), jax.tree.map(as_spec, input_spec[2]))
    else:
        spec = as_spec(input_spec)
    seq = spec[0] if isinstance(spec, tuple) else spec
    if not isinstance(seq, jax.ShapeDtypeStruct):
        raise layer_error(kind, f"expected a sequence spec, got {seq!r}")
    _check_sequence(kind, seq)
    return spec, seq


def _stateful_carry(kind: str, state, batch: int):
    carry = param(state, "carry", kind)
    stored = jax.tree.leaves(carry)[0].shape[0]
    if stored != batch:
        raise layer_error(
            kind,
            f"this stateful layer was initialised for batch size {stored} but got {batch}; "
            f"initialise the state for the new batch size (layer.init with that input spec)",
        )
    return carry


def _check_no_carry(kind: str, stateful: bool, initial_carry) -> None:
    if stateful and initial_carry is not None:
        raise layer_error(
            kind, "a stateful layer starts from the carry in its state; pass no initial carry"
        )


def RNN(
    cell: Cell,
    *,
    return_sequences: bool = True,
    return_carry: bool = False,
    reverse: bool = False,
    stateful: bool = False,
    unroll: int = 1,
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
      name: the key of the params in the parent (default: the cell's kind, ``lstm_0``).

    The params are the cell's (``{"kernel", "recurrent_kernel", "bias"}``); see the module
    docstring for the accepted inputs (lengths, masks, initial carry).

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> net = jn.serial(jn.Embedding(10, 4), jn.RNN(jn.GRU(8)), jn.Dense(10))
        >>> spec, params, _ = net.init(jax.random.key(0), jax.ShapeDtypeStruct((2, 7), jnp.int32))
        >>> spec.shape, sorted(params)
        ((2, 7, 10), ['dense_0', 'embedding_0', 'gru_0'])
    """
    if not isinstance(cell, Cell):
        raise TypeError(f"RNN: expected a Cell (e.g. LSTM(64)), got {type(cell).__name__}")
    kind = cell.kind

    def apply(params, state, x, *, key=None, train):
        seq, extra, initial = _split_input(kind, x)
        _check_sequence(kind, seq)
        _check_no_carry(kind, stateful, initial)
        if stateful:
            initial = _stateful_carry(kind, state, seq.shape[0])
        res = scan_cell(
            cell,
            params,
            seq,
            lengths_or_mask=extra,
            initial_carry=initial,
            reverse=reverse,
            unroll=unroll,
            sequences=return_sequences,
        )
        y = res.outputs if return_sequences else res.last
        new_state = {"carry": jax.lax.stop_gradient(res.carry)} if stateful else state
        return ((y, res.carry) if return_carry else y), new_state

    def init(key, input_spec):
        spec, seq = _sequence_spec(kind, input_spec)
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
    name: str | None = None,
) -> Layer:
    """Several recurrent layers in sequence, sharing the lengths or mask of the input.

    Each cell is scanned over the whole sequence before the next (so each layer's input
    product is one matrix product). Params are ``{"layer_0": ..., "layer_1": ...}``; the
    carry (initial, final, or in ``state`` when stateful) is a dict with the same keys.
    ``return_sequences`` applies to the last layer.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> net = jn.StackedRNN([jn.LSTM(8), jn.LSTM(6)], return_carry=True)
        >>> spec, params, _ = net.init(jax.random.key(0), (2, 5, 3))
        >>> y_spec, carry_spec = spec
        >>> y_spec.shape, carry_spec["layer_1"]["h"].shape
        ((2, 5, 6), (2, 6))
    """
    cells = list(cells)
    if not cells or not all(isinstance(c, Cell) for c in cells):
        raise TypeError(f"StackedRNN: expected a non-empty list of Cells, got {cells!r}")
    kind = "StackedRNN"
    names = [f"layer_{i}" for i in range(len(cells))]

    def initial_carries(batch, dtype):
        return {n: c.initial_carry((batch,), dtype) for n, c in zip(names, cells, strict=True)}

    def apply(params, state, x, *, key=None, train):
        seq, extra, initial = _split_input(kind, x)
        _check_sequence(kind, seq)
        _check_no_carry(kind, stateful, initial)
        batch, time, _ = seq.shape
        valid = valid_steps(kind, extra, batch, time)
        expected = initial_carries(batch, seq.dtype)
        if stateful:
            initial = _stateful_carry(kind, state, batch)
        carries = expected if initial is None else _check_carry(kind, expected, initial)
        final = {}
        h = seq
        for i, (n, cell) in enumerate(zip(names, cells, strict=True)):
            sequences = return_sequences or i < len(cells) - 1
            res = _scan(
                cell, param(params, n, kind), h, valid, carries[n], False, unroll, sequences
            )
            final[n] = res.carry
            h = res.outputs if sequences else res.last
        new_state = {"carry": jax.lax.stop_gradient(final)} if stateful else state
        return ((h, final) if return_carry else h), new_state

    def init(key, input_spec):
        spec, seq = _sequence_spec(kind, input_spec)
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
    name: str | None = None,
) -> Layer:
    """One cell reads each sequence forwards, another backwards; outputs merged per step.

    The backward cell (by default a cell like ``forward`` with its own weights) reads each
    sequence from its *own* last valid step back to the first, so padding never enters it;
    its output at step ``t`` summarises ``x[t:length]``. ``merge`` is ``"concat"``
    (features ``2H``), ``"sum"``, ``"ave"`` or ``"mul"``. With ``return_sequences=False``
    the output merges the forward output at the last valid step with the backward output
    at step 0 (Keras' convention). Params and carries are ``{"forward", "backward"}``; a
    mask is allowed (steps are skipped), but "its own length" is meant for right padding.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> layer = jn.Bidirectional(jn.LSTM(4))
        >>> spec, params, _ = layer.init(jax.random.key(0), (2, 5, 3))
        >>> spec.shape, sorted(params)
        ((2, 5, 8), ['backward', 'forward'])
    """
    if merge not in _MERGES:
        raise ValueError(f"Bidirectional: merge must be one of {sorted(_MERGES)}, got {merge!r}")
    backward = forward if backward is None else backward
    for c in (forward, backward):
        if not isinstance(c, Cell):
            raise TypeError(f"Bidirectional: expected Cells, got {type(c).__name__}")
    if merge != "concat" and forward.features != backward.features:
        raise ValueError(
            f"Bidirectional: merge={merge!r} needs equal sizes, got {forward.features} and "
            f"{backward.features}"
        )
    kind = "Bidirectional"
    directions = (("forward", forward, False), ("backward", backward, True))
    combine = _MERGES[merge]

    def apply(params, state, x, *, key=None, train):
        seq, extra, initial = _split_input(kind, x)
        _check_sequence(kind, seq)
        batch, time, _ = seq.shape
        valid = valid_steps(kind, extra, batch, time)
        expected = {n: c.initial_carry((batch,), seq.dtype) for n, c, _ in directions}
        carries = expected if initial is None else _check_carry(kind, expected, initial)
        results = {
            n: _scan(
                c, param(params, n, kind), seq, valid, carries[n], rev, unroll, return_sequences
            )
            for n, c, rev in directions
        }
        fwd, bwd = results["forward"], results["backward"]
        y = combine(fwd.outputs, bwd.outputs) if return_sequences else combine(fwd.last, bwd.last)
        if return_carry:
            return (y, {n: r.carry for n, r in results.items()}), state
        return y, state

    def init(key, input_spec):
        spec, seq = _sequence_spec(kind, input_spec)
        params = {
            n: c.init(jax.random.fold_in(key, i), seq.shape[-1])
            for i, (n, c, _) in enumerate(directions)
        }
        return infer_output(apply, params, {}, spec), params, {}

    return Layer(init, apply, kind, name)
