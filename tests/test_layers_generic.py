"""Generic checks that every registered layer passes (see layer_cases.py)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from layer_cases import LayerCase, all_cases

from jaxnets import LayerError
from jaxnets._impl.choose import record_choices
from jaxnets._impl.registry import get_op

CASES = all_cases()


def _is_multi(shape) -> bool:
    return isinstance(shape[0], tuple)


def make_input(case: LayerCase, seed: int = 1, dtype=jnp.float32, leading=()):
    shapes = case.input_shape if _is_multi(case.input_shape) else (case.input_shape,)
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    if case.int_input_max is not None:
        xs = [
            jax.random.randint(k, leading + tuple(s), 0, case.int_input_max, jnp.int32)
            for k, s in zip(keys, shapes, strict=True)
        ]
    else:
        xs = [
            jax.random.normal(k, leading + tuple(s), jnp.float32).astype(dtype)
            for k, s in zip(keys, shapes, strict=True)
        ]
    return tuple(xs) if _is_multi(case.input_shape) else xs[0]


def spec_of(case: LayerCase, dtype=jnp.float32):
    dtype = jnp.int32 if case.int_input_max is not None else dtype
    if _is_multi(case.input_shape):
        return tuple(jax.ShapeDtypeStruct(s, dtype) for s in case.input_shape)
    return jax.ShapeDtypeStruct(case.input_shape, dtype)


def modes(case: LayerCase):
    return [False, True] if case.train else [False]


def flat_specs(tree):
    return [(tuple(a.shape), jnp.dtype(a.dtype)) for a in jax.tree.leaves(tree)]


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request) -> LayerCase:
    return request.param


def test_declared_output_spec_matches_apply(case):
    layer = case.make()
    spec, params, state = layer.init(jax.random.key(0), spec_of(case))
    x = make_input(case)
    for train in modes(case):
        y, new_state = layer.apply(params, state, x, key=jax.random.key(2), train=train)
        assert flat_specs(y) == flat_specs(spec), f"train={train}"
        assert flat_specs(new_state) == flat_specs(state), "state structure must be preserved"
        assert jax.tree.structure(new_state) == jax.tree.structure(state)


def test_init_runs_no_flops(case):
    """init gives the same specs when traced abstractly (no data needed)."""
    layer = case.make()
    concrete = layer.init(jax.random.key(0), spec_of(case))
    abstract = jax.eval_shape(lambda k: layer.init(k, spec_of(case)), jax.random.key(0))
    assert flat_specs(concrete) == flat_specs(abstract)


def test_jit_equals_eager(case):
    layer = case.make()
    _, params, state = layer.init(jax.random.key(0), spec_of(case))
    x = make_input(case)
    for train in modes(case):

        def run(p, s, x, train=train):
            return layer.apply(p, s, x, key=jax.random.key(3), train=train)

        eager = run(params, state, x)
        jitted = jax.jit(run)(params, state, x)
        chex.assert_trees_all_close(eager, jitted, rtol=1e-5, atol=1e-5)


def test_grads_match_finite_differences(case):
    if not case.check_grads:
        pytest.skip(case.skip_grads_reason)
    layer = case.make()
    with jax.enable_x64(True):
        _, params, state = layer.init(jax.random.key(0), spec_of(case))
        to64 = lambda t: jax.tree.map(  # noqa: E731
            lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, t
        )
        params, state = to64(params), to64(state)
        x = to64(make_input(case))
        weights = to64(
            jax.tree.map(
                lambda a: jnp.cos(jnp.arange(a.size).reshape(a.shape) * 1.0),
                jax.eval_shape(
                    lambda: layer.apply(params, state, x, key=jax.random.key(4), train=False)[0]
                ),
            )
        )
        for train in modes(case):

            def objective(p, x, train=train):
                y, _ = layer.apply(p, state, x, key=jax.random.key(4), train=train)
                return sum(
                    jnp.sum(a * w)
                    for a, w in zip(jax.tree.leaves(y), jax.tree.leaves(weights), strict=True)
                )

            if case.int_input_max is None:
                args = (params, x)
                f = objective
            else:
                args = (params,)
                f = lambda p, train=train: objective(p, x, train)  # noqa: E731
            if not jax.tree.leaves(args[0]) and case.int_input_max is not None:
                continue
            check_grads(
                f, args, order=1, modes=["rev"], atol=case.grad_atol, rtol=case.grad_rtol, eps=1e-6
            )


def test_dtype_is_preserved(case):
    if case.int_input_max is not None:
        pytest.skip("integer inputs: the output dtype is the params' dtype")
    layer = case.make()
    for dtype in case.input_dtypes:
        spec, params, state = layer.init(jax.random.key(0), spec_of(case, dtype))
        x = make_input(case, dtype=dtype)
        for train in modes(case):
            y, _ = layer.apply(params, state, x, key=jax.random.key(5), train=train)
            for leaf, s in zip(jax.tree.leaves(y), jax.tree.leaves(spec), strict=True):
                assert leaf.dtype == dtype, f"{dtype} in gave {leaf.dtype} out (train={train})"
                assert s.dtype == dtype


def test_second_call_does_not_retrace(case):
    chex.clear_trace_counter()
    layer = case.make()
    _, params, state = layer.init(jax.random.key(0), spec_of(case))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(p, s, x, k):
        return layer.apply(p, s, x, key=k, train=case.train)

    for seed in (1, 2, 3):
        jax.block_until_ready(run(params, state, make_input(case, seed), jax.random.key(seed)))


def test_vmap_equals_loop(case):
    if not case.vmap:
        pytest.skip("layer needs the whole batch")
    layer = case.make()
    _, params, state = layer.init(jax.random.key(0), spec_of(case))
    xs = make_input(case, leading=(2,))
    for train in modes(case):

        def run(x, train=train):
            return layer.apply(params, state, x, key=jax.random.key(6), train=train)

        batched = jax.vmap(run)(xs)
        looped = [run(jax.tree.map(lambda a, i=i: a[i], xs)) for i in range(2)]
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *looped)
        chex.assert_trees_all_close(batched, stacked, rtol=1e-5, atol=1e-5)


def test_params_have_readable_string_keys(case):
    layer = case.make()
    _, params, state = layer.init(jax.random.key(0), spec_of(case))
    for tree in (params, state):
        for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]:
            assert all(isinstance(p, jax.tree_util.DictKey) for p in path), path
            assert all(isinstance(p.key, str) and p.key for p in path), path


def test_same_key_same_init_different_key_different_init(case):
    layer = case.make()
    a = layer.init(jax.random.key(0), spec_of(case))[1]
    b = layer.init(jax.random.key(0), spec_of(case))[1]
    chex.assert_trees_all_equal(a, b)
    leaves = [
        np.asarray(x) for x in jax.tree.leaves(layer.init(jax.random.key(1), spec_of(case))[1])
    ]
    random_leaves = [x for x in leaves if np.unique(x).size > 1]
    if random_leaves:
        others = [np.asarray(x) for x in jax.tree.leaves(a) if np.unique(x).size > 1]
        assert any(not np.array_equal(p, q) for p, q in zip(random_leaves, others, strict=True))


def test_jitted_gradient_equals_eager_gradient(case):
    """``jit(grad(...))`` must work (reduce_window with a traced init value does not)."""
    if not case.check_grads:
        pytest.skip(case.skip_grads_reason)
    layer = case.make()
    _, params, state = layer.init(jax.random.key(0), spec_of(case))
    x = make_input(case)
    for train in modes(case):

        def objective(p, train=train):
            y, _ = layer.apply(p, state, x, key=jax.random.key(7), train=train)
            return sum(jnp.sum(jnp.sin(leaf.astype(jnp.float32))) for leaf in jax.tree.leaves(y))

        eager = jax.grad(objective)(params)
        jitted = jax.jit(jax.grad(objective))(params)
        chex.assert_trees_all_close(eager, jitted, rtol=1e-4, atol=1e-5)


# ------------------------------------------------- named implementations vs the reference

IMPL_CASES = [c for c in CASES if c.reference is not None]


def _initialised(case: LayerCase):
    """The case's layer and its reference, with the same params and state."""
    layer, reference = case.make(), case.reference()
    _, params, state = layer.init(jax.random.key(0), spec_of(case))
    _, ref_params, ref_state = reference.init(jax.random.key(0), spec_of(case))
    chex.assert_trees_all_equal(params, ref_params)
    chex.assert_trees_all_equal(state, ref_state)
    return layer, reference, params, state


def _chosen(layer, params, state, x, train):
    """The implementation the layer's apply chose (the reference where the named one does
    not take part in this mode, as BatchNorm's closed form outside training)."""
    with record_choices() as choices:
        jax.eval_shape(
            lambda p: layer.apply(p, state, x, key=jax.random.key(8), train=train), params
        )
    several = [c for c in choices if get_op(c.op).others]  # ops with only a reference aside
    assert len({(c.op, c.impl) for c in several}) == 1, f"expected one choice: {choices}"
    op = get_op(several[0].op)
    return op.others.get(several[0].impl, op.reference)


@pytest.mark.parametrize("case", IMPL_CASES, ids=[c.id for c in IMPL_CASES])
def test_implementation_equals_reference(case):
    """Values, new state and gradients (params and input) equal the reference's."""
    layer, reference, params, state = _initialised(case)
    x = make_input(case)
    chosen = {_chosen(layer, params, state, x, train).name for train in modes(case)}
    assert chosen != {"reference"}, "the named implementation never ran"
    for train in modes(case):

        def objective(net, p, x, train=train):
            y, new_state = net.apply(p, state, x, key=jax.random.key(9), train=train)
            total = sum(jnp.sum(jnp.sin(a)) for a in jax.tree.leaves(y))
            return total, (y, new_state)

        (value, aux), grads = jax.value_and_grad(
            lambda p, x: objective(layer, p, x), argnums=(0, 1), has_aux=True
        )(params, x)
        (ref_value, ref_aux), ref_grads = jax.value_and_grad(
            lambda p, x: objective(reference, p, x), argnums=(0, 1), has_aux=True
        )(params, x)
        chex.assert_trees_all_close(aux, ref_aux, rtol=1e-5, atol=1e-5)
        chex.assert_trees_all_close(grads, ref_grads, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(value, ref_value, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", IMPL_CASES, ids=[c.id for c in IMPL_CASES])
def test_forward_mode_where_declared(case):
    """``jax.jvp`` equals the reference's where the implementation declares forward mode,
    and is refused with a LayerError naming impl='reference' where it does not."""
    layer, reference, params, state = _initialised(case)
    x = make_input(case)
    tangent = jax.tree.map(lambda a: jnp.cos(jnp.arange(a.size).reshape(a.shape) * 1.0), params)
    for train in modes(case):
        impl = _chosen(layer, params, state, x, train)

        def run(net, p, train=train):
            return net.apply(p, state, x, key=jax.random.key(10), train=train)[0]

        if "forward" in impl.transforms:
            out, tan = jax.jvp(lambda p: run(layer, p), (params,), (tangent,))
            ref_out, ref_tan = jax.jvp(lambda p: run(reference, p), (params,), (tangent,))
            chex.assert_trees_all_close(out, ref_out, rtol=1e-5, atol=1e-5)
            chex.assert_trees_all_close(tan, ref_tan, rtol=1e-4, atol=1e-5)
        else:
            with pytest.raises(LayerError, match="impl='reference'"):
                jax.jvp(lambda p: run(layer, p), (params,), (tangent,))
