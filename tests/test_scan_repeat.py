"""repeat (lax.scan over stacked params) and remat (jax.checkpoint) wrappers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn


def _block():
    return jn.residual(jn.serial(jn.Dense(8), jn.Relu(), jn.Dense(8)))


def _unrolled(block, n, params, state, x, key, train):
    """The same network as a Python loop over the stacked params (the unrolled stack)."""
    keys = None if key is None else jax.random.split(key, n)
    for i in range(n):
        p = jax.tree.map(lambda a, i=i: a[i], params)
        s = jax.tree.map(lambda a, i=i: a[i], state)
        x, _ = block.apply(p, s, x, key=None if keys is None else keys[i], train=train)
    return x


@pytest.mark.parametrize(
    "options",
    [{}, {"remat": False}, {"policy": jax.checkpoint_policies.dots_saveable}],
    ids=["remat", "saved", "policy"],
)
def test_repeat_matches_unrolled_outputs_and_gradients(key, options):
    block, n = _block(), 6
    net = jn.repeat(block, n, **options)
    spec, params, state = net.init(key, (3, 8))
    assert spec.shape == (3, 8)
    assert params["main"]["dense_0"]["kernel"].shape == (n, 8, 8)
    x = jax.random.normal(jax.random.key(1), (3, 8))

    def loss_scan(p):
        return jnp.sum(net.apply(p, state, x, train=True)[0] ** 2)

    def loss_loop(p):
        return jnp.sum(_unrolled(block, n, p, state, x, None, True) ** 2)

    np.testing.assert_allclose(loss_scan(params), loss_loop(params), rtol=1e-6)
    g_scan, g_loop = jax.grad(loss_scan)(params), jax.grad(loss_loop)(params)
    for a, b in zip(jax.tree.leaves(g_scan), jax.tree.leaves(g_loop), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _grad_jaxpr(net, params, state, x):
    return str(
        jax.make_jaxpr(jax.grad(lambda p: net.apply(p, state, x, train=True)[0].sum()))(params)
    )


def test_repeat_rematerialises_by_default_and_saves_with_remat_false(key):
    block = _block()
    _, params, state = jn.repeat(block, 3).init(key, (2, 8))
    x = jnp.ones((2, 8))
    default = _grad_jaxpr(jn.repeat(block, 3), params, state, x)
    assert "while" in default and "scan" not in default and "checkpoint" not in default
    policy = jax.checkpoint_policies.nothing_saveable
    with_policy = _grad_jaxpr(jn.repeat(block, 3, policy=policy), params, state, x)
    assert "checkpoint" in with_policy or "remat" in with_policy
    saved = _grad_jaxpr(jn.repeat(block, 3, remat=False), params, state, x)
    assert "scan" in saved and "checkpoint" not in saved and "remat" not in saved


def test_repeat_default_reverse_mode_only_others_forward_mode(key):
    """jax.jvp goes through the default repeat (auto takes the reference under forward
    mode), remat=False and a policy, with the reverse-mode derivative of the default."""
    block, n = _block(), 4
    x = jax.random.normal(jax.random.key(5), (3, 8))
    v = jax.random.normal(jax.random.key(6), (3, 8))
    _, params, state = jn.repeat(block, n).init(key, (3, 8))

    def run(net):
        return lambda x: net.apply(params, state, x, train=False)[0]

    expected = jax.vjp(run(jn.repeat(block, n)), x)[1](v)[0]
    for options in (
        {},  # impl="auto" sees the jvp and takes the reference
        {"remat": False},
        {"policy": jax.checkpoint_policies.nothing_saveable},
    ):
        tangent = jax.jvp(run(jn.repeat(block, n, **options)), (x,), (v,))[1]
        assert tangent.shape == x.shape
        np.testing.assert_allclose(
            jax.vjp(run(jn.repeat(block, n, **options)), x)[1](v)[0], expected, rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("n", [1, 2, 5])
def test_repeat_default_gradients_match_scan_for_x_params_and_state(key, n):
    """Gradients w.r.t. the input, params and float state (through the new state too),
    with dropout keys, equal those of lax.scan of jax.checkpoint (the policy path)."""
    block = jn.residual(jn.serial(jn.Dense(4), jn.BatchNorm(), jn.Gelu(), jn.Dropout(0.3)))
    nets = jn.repeat(block, n), jn.repeat(block, n, policy=jax.checkpoint_policies.nothing_saveable)
    _, params, state = nets[0].init(key, (6, 4))
    x = jax.random.normal(jax.random.key(7), (6, 4))

    def loss(net, p, s, x):
        y, new_state = net.apply(p, s, x, key=jax.random.key(8), train=True)
        extra = sum(jnp.sum(jnp.sin(a)) for a in jax.tree.leaves(new_state))
        return jnp.sum(jnp.tanh(y) ** 2) + extra

    grads = [
        jax.jit(jax.grad(lambda *a, net=net: loss(net, *a), argnums=(0, 1, 2)))(params, state, x)
        for net in nets
    ]
    for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert jax.tree.structure(grads[0]) == jax.tree.structure(grads[1])


def test_repeat_policy_needs_remat():
    with pytest.raises(ValueError, match="policy needs remat=True"):
        jn.repeat(_block(), 2, remat=False, policy=jax.checkpoint_policies.dots_saveable)


def test_repeat_remat_keeps_state_and_dropout_masks(key):
    block = jn.serial(jn.Dense(4), jn.BatchNorm(), jn.Dropout(0.5))
    nets = jn.repeat(block, 3), jn.repeat(block, 3, remat=False)
    _, params, state = nets[0].init(key, (8, 4))
    x = jax.random.normal(jax.random.key(2), (8, 4))
    outs = [net.apply(params, state, x, key=jax.random.key(3), train=True) for net in nets]
    for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)

    def loss(net, p):
        return jnp.sum(net.apply(p, state, x, key=jax.random.key(3), train=True)[0] ** 2)

    g_remat, g_saved = (jax.grad(lambda p, net=net: loss(net, p))(params) for net in nets)
    for a, b in zip(jax.tree.leaves(g_remat), jax.tree.leaves(g_saved), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_repeat_layers_get_distinct_params(key):
    _, params, _ = jn.repeat(_block(), 3).init(key, (1, 8))
    kernels = params["main"]["dense_0"]["kernel"]
    assert not np.allclose(kernels[0], kernels[1])


def test_repeat_carries_state_and_keys(key):
    block = jn.serial(jn.Dense(4), jn.BatchNorm(), jn.Dropout(0.5))
    net = jn.repeat(block, 3)
    _, params, state = net.init(key, (8, 4))
    assert state["batchnorm_0"]["mean"].shape == (3, 4)
    x = jax.random.normal(jax.random.key(2), (8, 4))
    y, new_state = net.apply(params, state, x, key=jax.random.key(3), train=True)
    assert y.shape == (8, 4)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert not np.allclose(new_state["batchnorm_0"]["mean"], state["batchnorm_0"]["mean"])


def test_repeat_rejects_shape_changing_block(key):
    with pytest.raises(ValueError, match=r"repeat: the block maps .*\(2, 3\).* to .*\(2, 5\)"):
        jn.repeat(jn.Dense(5), 2).init(key, (2, 3))


@pytest.mark.parametrize(
    ("n", "error"), [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError)]
)
def test_repeat_rejects_bad_counts(n, error):
    with pytest.raises(error, match="repeat: n must be a positive int"):
        jn.repeat(jn.Dense(2), n)


def test_repeat_accepts_numpy_counts_and_unroll_true():
    net = jn.repeat(jn.residual(jn.Dense(3)), np.int64(3), unroll=True)
    _, params, state = net.init(jax.random.key(0), (2, 3))
    assert params["main"]["kernel"].shape == (3, 3, 3)
    assert net.apply(params, state, jnp.ones((2, 3)), train=False)[0].shape == (2, 3)


def test_repeat_inside_serial_and_jit(key):
    net = jn.serial(jn.Dense(8), ("body", jn.repeat(_block(), 4)), jn.Dense(2))
    _, params, state = net.init(key, (2, 5))
    assert params["body"]["main"]["dense_1"]["bias"].shape == (4, 8)
    x = jnp.ones((2, 5))
    eager = net.apply(params, state, x, train=False)[0]
    jitted = jax.jit(lambda p, x: net.apply(p, state, x, train=False)[0])(params, x)
    np.testing.assert_allclose(eager, jitted, rtol=1e-6)


def test_remat_same_values_and_gradients(key):
    block = _block()
    _, params, state = block.init(key, (2, 8))
    x = jax.random.normal(jax.random.key(4), (2, 8))
    wrapped = jn.remat(block)
    assert wrapped.kind == block.kind

    def loss(layer, p):
        return jnp.sum(jnp.tanh(layer.apply(p, state, x, train=True)[0]))

    assert loss(block, params) == loss(wrapped, params)
    g1 = jax.grad(lambda p: loss(block, p))(params)
    g2 = jax.grad(lambda p: loss(wrapped, p))(params)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_remat_inside_repeat_and_grad_has_checkpoint(key):
    net = jn.repeat(jn.remat(_block()), 3)
    _, params, state = net.init(key, (2, 8))
    x = jnp.ones((2, 8))
    jaxpr = jax.make_jaxpr(jax.grad(lambda p: net.apply(p, state, x, train=True)[0].sum()))(params)
    assert "checkpoint" in str(jaxpr) or "remat" in str(jaxpr)


def test_repeat_default_rejects_state_changing_dtype(key):
    def init(key, spec):
        return jn.core.as_spec(spec), {}, {"count": jnp.zeros((), jnp.int32)}

    def apply(params, state, x, *, key=None, train):
        return x, {"count": state["count"].astype(jnp.float32) + 1}

    block = jn.Layer(init, apply, "counter", None)
    _, params, state = jn.repeat(block, 2).init(key, (2, 3))
    with pytest.raises(ValueError, match="new state must have the structure"):
        jn.repeat(block, 2).apply(params, state, jnp.ones((2, 3)), train=True)
    y, _ = jn.repeat(block, 2, remat=False).apply(params, state, jnp.ones((2, 3)), train=True)
    assert y.shape == (2, 3)
