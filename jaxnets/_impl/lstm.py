"""LSTM over a whole unpadded sequence in chunks of steps (the CPU formulations).

The time loop runs in up to :data:`CHUNKS` consecutive chunks; each chunk's input product
``x[chunk] @ kernel`` is computed before its loop, which XLA:CPU runs while the previous
chunk's loop runs, then one ``h @ recurrent_kernel`` ``(H, 4H)`` per step. ``chunked``
adds a hand-written backward pass (a ``jax.custom_vjp``): the backward loop computes only
the gate gradients ``dz`` (written in place over the stored gate activations, in the
buffer of the chunk's input product) and ``dh = dz @ recurrent_kernel.T``; the weight
gradients are then large products over each chunk's steps. It needs far less temporary
memory than differentiating the scan. ``chunked_forward`` is the same forward loop without
it, differentiated by JAX (so forward mode works). Values and gradients equal the
reference scan's to float32 rounding (tested).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxnets._impl.registry import TRANSFORMS, register
from jaxnets.core import along_last


def _nonempty(params, x, carry, unroll) -> str | None:
    return None if x.shape[0] > 0 else "needs at least one time step"


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


#: The time loop runs in up to this many chunks (consecutive loops): each chunk's input
#: product runs on a second core while the previous chunk's loop runs, and the backward
#: pass's weight-gradient products are smaller per chunk (the chunk counts measured are in
#: ``benchmarks/RESULTS_CPU.md``).
CHUNKS = 8


def _chunks(steps: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: ``steps`` cut into ``min(CHUNKS, steps)`` nearly
    equal consecutive chunks."""
    n = min(CHUNKS, steps)
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


@register(
    "lstm_sequence",
    "chunked",
    platforms={"cpu"},
    transforms={"reverse", "vmap", "higher"},
    applies=_nonempty,
)
def chunked(params, x, carry, unroll):
    """``(hs, {"c", "h"})`` for a time-major ``x`` ``(T, B, in)``, with the hand-written
    backward pass."""
    hs, c, h = _lstm_sequence(
        unroll,
        params["kernel"],
        params["recurrent_kernel"],
        params["bias"],
        x,
        carry["c"],
        carry["h"],
    )
    return hs, {"c": c, "h": h}


@register(
    "lstm_sequence",
    "chunked_forward",
    platforms={"cpu"},
    transforms=TRANSFORMS,
    applies=_nonempty,
)
def chunked_forward(params, x, carry, unroll):
    """As :func:`chunked`, differentiated by JAX."""
    hs, c, h, _, _ = _lstm_chunks(
        params["kernel"],
        params["recurrent_kernel"],
        params["bias"],
        x,
        carry["c"],
        carry["h"],
        False,
        unroll,
    )
    return hs, {"c": c, "h": h}
