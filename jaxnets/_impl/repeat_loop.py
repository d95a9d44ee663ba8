"""``repeat``'s rematerialised loop as a ``jax.custom_vjp`` of two ``lax.while_loop``s.

On XLA:CPU the compile time of a scanned network is set by how many distinct kernels XLA
emits for the two loop bodies (XLA compiles identical fusions once), and saving every
intermediate of the block as a stacked residual costs more kernels than recomputing it.
This loop keeps only each block's input, and its backward loop's parameter slices,
counter, loop test and first recomputed operations are the same kernels as the forward
loop's (see :func:`_looped`; the counts are in ``benchmarks/RESULTS_CPU.md``). Reverse mode
and ``vmap`` only: forward mode and derivatives of derivatives need the reference
(``lax.scan``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets._impl.registry import register
from jaxnets.core import Layer, layer_error


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


def _remat_loop(block, n, train, params, state, x, keys, remat, policy, unroll) -> str | None:
    one_step = unroll is False or (unroll is not True and unroll == 1)  # True == 1 in Python
    if not remat or policy is not None or not one_step:
        return "needs remat=True, no checkpoint policy and unroll=1"
    return None


@register(
    "repeat", "while_loop", platforms=None, transforms={"reverse", "vmap"}, applies=_remat_loop
)
def while_loop(block: Layer, n: int, train: bool, params, state, x, keys, remat, policy, unroll):
    """``(y, new_state)``: ``block`` applied ``n`` times over its stacked ``params`` and
    ``state``, the input of each application kept for the backward loop."""
    return _looped(block, n, train, params, state, x, keys)
