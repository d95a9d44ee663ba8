"""The implementation seam: the XLA options chosen from what implementations declare."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets._impl import xla_options

# ----------------------------------------------------------------- compiler options


def _small_cnn(width=4):
    return jn.serial(
        jn.Conv(width, (3, 3)), jn.Relu(), jn.MaxPool((2, 2)), jn.Flatten(), jn.Dense(3)
    )


def _cnn_batch(channels=2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 8, 8, channels)).astype(np.float32)
    return x, rng.integers(0, 3, 8).astype(np.int32)


def _if_understood(options: dict) -> dict:
    """The options where this jaxlib compiles with them (older ones get XLA's defaults)."""
    return dict(options) if xla_options.understood(options) else {}


def test_compiler_options_only_for_convolutions_on_several_cores(monkeypatch):
    monkeypatch.setattr(xla_options, "usable_cores", lambda: 2)
    x, _ = _cnn_batch()
    _, params, state = jn.init_model(_small_cnn(), jax.random.key(0), x.shape)

    def run(model, params, x):
        return model.apply(params, state, x, train=False)[0]

    assert xla_options.compiler_options(lambda p, x: run(_small_cnn(), p, x), params, x) == (
        _if_understood(xla_options.CONVOLUTIONS_ON_EIGEN)
    )
    normalised = jn.serial(jn.Conv(4, (3, 3)), jn.BatchNorm(), jn.Relu())
    _, bn_params, bn_state = jn.init_model(normalised, jax.random.key(0), x.shape)

    def bn_loss(p, x):
        return jnp.sum(normalised.apply(p, bn_state, x, train=True)[0])

    assert xla_options.compiler_options(jax.grad(bn_loss), bn_params, x) == (
        _if_understood(xla_options.CONVOLUTIONS_ON_EIGEN_NORMALISED)
    )
    scanned = lambda x: jax.lax.scan(lambda c, _: (jnp.tanh(c), None), x, length=2)[0]  # noqa: E731
    assert xla_options.compiler_options(scanned, x) == {}
    conv_in_scan = lambda w, x: jax.lax.scan(  # noqa: E731
        lambda c, _: (jax.lax.conv(c, w, (1, 1), "SAME"), None), x, length=2
    )[0]
    w = np.ones((2, 2, 3, 3), np.float32)
    # a bare lax.conv declares nothing: the options follow the layers' declarations only
    assert xla_options.compiler_options(conv_in_scan, w, np.ones((1, 2, 5, 5), np.float32)) == {}
    monkeypatch.setattr(xla_options, "usable_cores", lambda: 1)
    assert xla_options.compiler_options(conv_in_scan, w, np.ones((1, 2, 5, 5), np.float32)) == {}


def test_steps_compile_with_the_chosen_options(monkeypatch):
    import optax

    monkeypatch.setattr(xla_options, "usable_cores", lambda: 2)
    seen = []
    real_jit = jax.jit

    def spy(fn, **kwargs):
        seen.append(kwargs.get("compiler_options"))
        return real_jit(fn, **kwargs)

    monkeypatch.setattr(xla_options.jax, "jit", spy)
    model, opt = _small_cnn(), optax.adam(1e-2)
    x, y = _cnn_batch()
    on_cpu = jax.default_backend() == "cpu"
    expected = _if_understood(xla_options.CONVOLUTIONS_ON_EIGEN) or None if on_cpu else None
    for options, wanted in (
        (None, expected),
        ({}, None),
        ({"xla_cpu_enable_fast_math": False}, {"xla_cpu_enable_fast_math": False}),
    ):
        seen.clear()
        step = jn.make_train_step(model, "softmax_cross_entropy", opt, compiler_options=options)
        ts, _ = step(jn.create_train_state(model, opt, x.shape), (x, y))
        jn.make_eval_step(model, "softmax_cross_entropy", compiler_options=options)(
            ts, (x, y, np.ones(8, np.float32))
        )
        jn.make_predict(model, compiler_options=options)(ts.params, ts.state, x)
        assert seen == [wanted] * 3, (options, seen)
    # the train step looks at the model's operations: RMSprop's rsqrt is no normalisation
    seen.clear()
    rmsprop = optax.rmsprop(1e-3)
    step = jn.make_train_step(model, "softmax_cross_entropy", rmsprop)
    step(jn.create_train_state(model, rmsprop, x.shape), (x, y))
    assert seen == [expected]


@pytest.mark.skipif(
    jax.default_backend() != "cpu" or xla_options.usable_cores() < 2,
    reason="needs 2 CPU cores",
)
def test_train_step_with_convolutions_on_eigen_equals_xla_defaults():
    import optax

    model, opt = _small_cnn(16), optax.adam(1e-2)
    batch = _cnn_batch(16)
    tuned = jn.make_train_step(model, "softmax_cross_entropy", opt)
    plain = jn.make_train_step(model, "softmax_cross_entropy", opt, compiler_options={})
    ts_a = jn.create_train_state(model, opt, batch[0].shape)
    ts_b = jn.create_train_state(model, opt, batch[0].shape)
    for _ in range(3):
        ts_a, m_a = tuned(ts_a, batch)
        ts_b, m_b = plain(ts_b, batch)
        np.testing.assert_allclose(m_a["loss"], m_b["loss"], rtol=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
        ts_a.params,
        ts_b.params,
    )
    eval_tuned = jn.make_eval_step(model, "softmax_cross_entropy")
    eval_plain = jn.make_eval_step(model, "softmax_cross_entropy", compiler_options={})
    full = (*batch, np.ones(8, np.float32))
    np.testing.assert_allclose(
        eval_tuned(ts_a, full)["loss"], eval_plain(ts_a, full)["loss"], rtol=1e-5
    )


# ----------------------------------------------------------------- impl= at the door


@pytest.mark.parametrize(
    ("make", "listed"),
    [
        (lambda impl: jn.BatchNorm(impl=impl), "'auto', 'reference', 'closed_form'"),
        (lambda impl: jn.MaxPool(2, impl=impl), "'auto', 'reference', 'tiled'"),
        (lambda impl: jn.repeat(jn.Dense(2), 2, impl=impl), "'auto', 'reference', 'while_loop'"),
    ],
)
def test_impl_names_are_checked_against_the_registered_ones(make, listed):
    with pytest.raises(ValueError, match=f"impl must be one of {listed}, got 'fast'"):
        make("fast")
    with pytest.raises(TypeError, match=r"impl must be one of .*, got None"):
        make(None)
    make("reference")


def test_impl_choices_list_a_newly_registered_implementation():
    from jaxnets._impl import registry

    registry.define_op("test_door_op", None, layer="DoorOp")
    try:
        registry.register("test_door_op", "fused", platforms=None, transforms={"reverse"})(abs)
        assert registry.check_impl("test_door_op", "fused") == "fused"
        with pytest.raises(
            ValueError, match="DoorOp: impl must be one of 'auto', 'reference', 'fused'"
        ):
            registry.check_impl("test_door_op", "unfused")
    finally:
        del registry._OPS["test_door_op"]  # leave the registry as the library made it
