"""``repeat``: one block applied ``n`` times in a loop over stacked parameters.

A deep stack of identical blocks written as ``serial(block, block, ...)`` traces and
compiles every copy; ``repeat(block, n)`` traces the block once and loops over it, so
compile time stops growing with depth. Each parameter (and state) leaf of the block gets
a leading axis of length ``n``: ``params["main"]["dense_0"]["kernel"]`` has shape
``(n, in, out)``. The block must map its input spec to the same spec.

By default the loop body is rematerialised: the forward loop keeps only each block's
input, and the backward loop recomputes the block before differentiating it. On XLA:CPU
the compile time of a scanned network is set by how many distinct kernels XLA emits for
the two loop bodies (about 17 ms of CPU each; XLA compiles identical fusions once), and
saving every intermediate of the block as a stacked residual costs more kernels than
recomputing it (XLA recomputes each stored value inside the store). The default is a
``jax.custom_vjp`` of two ``lax.while_loop``s written so that the backward loop's
parameter slices, counter, loop test and first recomputed operations are the same kernels
as the forward loop's (see ``_looped``): on 24 pre-norm residual MLP blocks 30 distinct
kernels, against 35 for ``lax.scan`` of ``jax.checkpoint`` and 41 with every intermediate
saved (``benchmarks/bench_scan_compile.py``).
Like every ``custom_vjp`` it supports reverse mode only (``jax.grad``, ``jax.vjp``, once):
``jax.jvp``/``jax.jacfwd`` and gradients of gradients need ``remat=False`` (intermediates
saved) or a ``policy`` (``lax.scan`` of ``jax.checkpoint``; pass
``jax.checkpoint_policies.nothing_saveable`` for the default's memory use).

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> block = jn.residual(jn.serial(jn.Dense(8), jn.Relu()))
    >>> net = jn.repeat(block, 24)
    >>> spec, params, _ = net.init(jax.random.key(0), (2, 8))
    >>> params["main"]["dense_0"]["kernel"].shape
    (24, 8, 8)
    >>> net.apply(params, {}, jnp.ones((2, 8)), train=False)[0].shape
    (2, 8)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.core import Layer, Params, SpecLike, State, as_spec, layer_error


def _index(a, k):
    return lax.dynamic_index_in_dim(a, k, keepdims=False, allow_negative_indices=False)


def _take(tree, k):
    # Loop counters run from 1 to n and layer k - 1 is read (see _looped).
    return jax.tree.map(lambda a: _index(a, k - 1), tree)


def _put(tree, values, k):
    return jax.tree.map(
        lambda a, v: lax.dynamic_update_index_in_dim(a, v, k - 1, 0, allow_negative_indices=False),
        tree,
        values,
    )


def _looped(block: Layer, n: int, train: bool, params, state, x, keys):
    """The rematerialised loop as a ``custom_vjp`` of two ``lax.while_loop``s.

    XLA:CPU compiles each distinct fusion once and reuses the kernel for identical ones,
    so the loops are written to make the backward loop's kernels repeat the forward
    loop's where possible. The forward loop counts k = 1..n and the backward loop
    k = n..1, and both read layer k - 1 of every stacked array with the same index
    expression: the parameter slices, the counter and the first recomputed operations
    of the block compile once for both loops (a ``lax.scan`` and its autodiff transpose
    index with i and n - 1 - i, which shares none). Counting from 1 puts an add into
    every index, which XLA fuses into each dynamic-(update-)slice: a bare
    dynamic-update-slice is emitted once per instruction, never shared. The block
    inputs live in one ``(n + 1, ...)`` buffer that both loops read at k - 1 (the
    forward loop writes each output at k, which XLA fuses with the block's last
    operation), so the recomputation reads its input exactly as the forward pass did.
    Both loops stop on ``k != end`` so that they share the comparison kernel too
    (``k <= n`` and ``k >= 1`` are two kernels). Gradient buffers start as copies of the
    stacked variables (every slot is overwritten), which needs no zero-filling kernel.
    30 distinct kernels for the
    training step of ``benchmarks/bench_scan_compile.py`` (24 residual MLP blocks)
    against 35 for ``lax.scan`` of ``jax.checkpoint``.
    """
    leaves, treedef = jax.tree.flatten((params, state))
    is_diff = [jnp.issubdtype(a.dtype, jnp.inexact) for a in leaves]
    n_state = len(jax.tree.leaves(state))
    state_is_diff = is_diff[len(is_diff) - n_state :]

    def split(all_leaves, mask):
        return (
            [a for a, d in zip(all_leaves, mask, strict=True) if d],
            [a for a, d in zip(all_leaves, mask, strict=True) if not d],
        )

    def layer(diff, fixed, c, key):
        p, s = jax.tree.unflatten(treedef, _merge(diff, fixed, is_diff))
        y, new_s = block.apply(p, s, c, key=key, train=train)
        old = [(a.shape, a.dtype) for a in jax.tree.leaves(s)]
        if jax.tree.structure(new_s) != jax.tree.structure(s) or old != [
            (a.shape, a.dtype) for a in jax.tree.leaves(new_s)
        ]:
            raise layer_error(
                "repeat",
                "the block's new state must have the structure, shapes and dtypes of its "
                "state (or use remat=False)",
            )
        return y, new_s

    def forward(diff, fixed, x, keys, save):
        _, stacked_state = jax.tree.unflatten(treedef, _merge(diff, fixed, is_diff))
        if not save:

            def body(carry):
                k, c, new_state = carry
                y, s = layer(_take(diff, k), _take(fixed, k), c, _take(keys, k))
                return k + 1, y, _put(new_state, s, k)

            _, y, new_state = lax.while_loop(
                lambda c: c[0] != n + 1, body, (jnp.int32(1), x, stacked_state)
            )
            return (y, new_state), None

        def body(carry):
            k, new_state, xs = carry
            c = jax.tree.map(lambda a: _index(a, k - 1), xs)
            y, s = layer(_take(diff, k), _take(fixed, k), c, _take(keys, k))
            xs = jax.tree.map(
                lambda a, v: lax.dynamic_update_index_in_dim(
                    a, v, k, 0, allow_negative_indices=False
                ),
                xs,
                y,
            )
            return k + 1, _put(new_state, s, k), xs

        xs = jax.tree.map(lambda a: jnp.zeros((n + 1, *a.shape), a.dtype).at[0].set(a), x)
        _, new_state, xs = lax.while_loop(
            lambda c: c[0] != n + 1, body, (jnp.int32(1), stacked_state, xs)
        )
        y = jax.tree.map(lambda a: a[n], xs)
        return (y, new_state), xs

    @jax.custom_vjp
    def run(diff, fixed, x, keys):
        return forward(diff, fixed, x, keys, save=False)[0]

    def run_fwd(diff, fixed, x, keys):
        out, xs = forward(diff, fixed, x, keys, save=True)
        return out, (diff, fixed, keys, xs)

    def run_bwd(res, cotangents):
        diff, fixed, keys, xs = res
        g_y, g_state = cotangents
        g_state = split(jax.tree.leaves(g_state), state_is_diff)[0]

        def body(carry):
            k, g, grads = carry
            fixed_k, key_k = _take(fixed, k), _take(keys, k)

            def differentiable(d, c):
                y, s = layer(d, fixed_k, c, key_k)
                return y, split(jax.tree.leaves(s), state_is_diff)[0]

            c = jax.tree.map(lambda a: _index(a, k - 1), xs)
            _, vjp = jax.vjp(differentiable, _take(diff, k), c)
            d_diff, d_c = vjp((g, _take(g_state, k)))
            return k - 1, d_c, _put(grads, d_diff, k)

        init = (jnp.int32(n), g_y, list(diff))
        _, d_x, d_diff = lax.while_loop(lambda c: c[0] != 0, body, init)
        return d_diff, None, d_x, None

    run.defvjp(run_fwd, run_bwd)
    diff, fixed = split(leaves, is_diff)
    return run(diff, fixed, x, keys)


def _merge(diff, fixed, is_diff):
    it_d, it_f = iter(diff), iter(fixed)
    return [next(it_d) if d else next(it_f) for d in is_diff]


def repeat(
    block: Layer,
    n: int,
    *,
    remat: bool = True,
    policy=None,
    unroll: int | bool = 1,
    name: str | None = None,
) -> Layer:
    """Apply ``block`` ``n`` times in sequence, each time with its own parameters.

    Args:
        block: a layer whose output spec equals its input spec.
        n: how many times (at least 1).
        remat: rematerialise the loop body in the backward pass: the forward loop
            stores one input per block instead of every intermediate. Fewer compiled
            kernels and less memory for about one more forward pass of each block;
            ``False`` stores the intermediates (``lax.scan``, any order of autodiff).
        policy: with ``remat``, a ``jax.checkpoint_policies`` entry choosing what may be
            saved (e.g. ``jax.checkpoint_policies.dots_saveable``); the loop is then a
            ``lax.scan`` of ``jax.checkpoint``, which also supports forward mode. None:
            the reverse-mode-only loop of the module docstring, saving only the inputs.
        unroll: passed to ``lax.scan``: how many iterations to unroll per loop step
            (``True`` unrolls all: the compile time of the plain stack, for comparison).
            Anything but 1 uses ``lax.scan`` (of ``jax.checkpoint`` with ``remat``).
        name: the key of the stacked params in the parent.

    Layer ``i`` is initialised with ``jax.random.split(key, n)[i]`` and, in training,
    gets ``jax.random.split(key, n)[i]`` of the apply key.
    """
    if not isinstance(block, Layer):
        raise TypeError(f"repeat: expected a Layer, got {type(block).__name__}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"repeat: n must be an integer >= 1, got {n!r}")
    if policy is not None and not remat:
        raise ValueError("repeat: a checkpoint policy needs remat=True")

    def init(key, input_spec: SpecLike):
        spec = as_spec(input_spec)
        out_spec, _, _ = jax.eval_shape(lambda k: block.init(k, spec), key)
        if out_spec != spec:
            raise layer_error(
                "repeat",
                f"the block maps {spec} to {out_spec}; a repeated block must keep the "
                f"shape and dtype of its input",
            )
        params, state = jax.vmap(lambda k: block.init(k, spec)[1:])(jax.random.split(key, n))
        return spec, params, state

    def apply(params: Params, state: State, x, *, key=None, train):
        keys = None if key is None else jax.random.split(key, n)
        if remat and policy is None and (unroll is False or (unroll is not True and unroll == 1)):
            return _looped(block, n, train, params, state, x, keys)

        def step(p, s, carry, k):
            return block.apply(p, s, carry, key=k, train=train)

        if remat:
            # lax.scan already keeps the recomputation apart from the forward loop, so
            # the CSE barriers of prevent_cse are not needed (JAX's advice for scan).
            step = jax.checkpoint(step, policy=policy, prevent_cse=False)

        def body(carry, per_layer):
            p, s, k = per_layer
            return step(p, s, carry, k)

        return lax.scan(body, x, (params, state, keys), length=n, unroll=unroll)

    return Layer(init, apply, "repeat", name)
