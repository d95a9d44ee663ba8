"""The automatic choice under transformations the seam's first version misread: jax.linearize
(a forward-mode function built on the linearize trace jax.grad uses) and a fully unrolled
repeat."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets._impl.choose import record_choices


def _model_and_inputs(model, shape):
    _, params, state = model.init(jax.random.key(0), shape)
    x = jax.random.normal(jax.random.key(1), shape)
    return params, state, x


def _linearize_matches_jvp(model, shape):
    params, state, x = _model_and_inputs(model, shape)

    def f(p):
        return jnp.sum(model.apply(p, state, x, train=False)[0] ** 2)

    tangent = jax.tree.map(jnp.ones_like, params)
    with record_choices() as choices:
        value, f_jvp = jax.linearize(f, params)
        lin = f_jvp(tangent)
    _, expected = jax.jvp(f, (params,), (tangent,))
    np.testing.assert_allclose(lin, expected, rtol=1e-5, atol=1e-5)
    return choices


def test_linearize_goes_through_the_default_repeat():
    block = jn.serial(jn.Dense(4, activation="tanh"), jn.Dense(4))
    choices = _linearize_matches_jvp(jn.repeat(block, 3), (2, 4))
    assert {c.impl for c in choices if c.op == "repeat"} == {"reference"}


def test_linearize_goes_through_the_default_lstm():
    model = jn.serial(jn.RNN(jn.LSTM(5)), jn.Dense(2))
    _linearize_matches_jvp(model, (2, 7, 3))


def test_grad_still_picks_the_reverse_only_loop():
    block = jn.serial(jn.Dense(4, activation="tanh"), jn.Dense(4))
    model = jn.repeat(block, 3)
    params, state, x = _model_and_inputs(model, (2, 4))
    with record_choices() as choices:
        jax.grad(lambda p: jnp.sum(model.apply(p, state, x, train=False)[0]))(params)
    assert {c.impl for c in choices if c.op == "repeat"} == {"while_loop"}


def test_a_fully_unrolled_repeat_is_not_looped():
    block = jn.Dense(4, activation="tanh")
    model = jn.repeat(block, 3, unroll=True)
    params, state, x = _model_and_inputs(model, (2, 4))
    with record_choices() as choices:
        jax.grad(lambda p: jnp.sum(model.apply(p, state, x, train=False)[0]))(params)
    assert {c.impl for c in choices if c.op == "repeat"} == {"reference"}


def test_the_named_loop_refuses_a_full_unroll():
    model = jn.repeat(jn.Dense(4), 3, unroll=True, impl="while_loop")
    params, state, x = _model_and_inputs(model, (2, 4))
    with pytest.raises(jn.LayerError, match=r"unroll=1.*impl='reference'"):
        jax.grad(lambda p: jnp.sum(model.apply(p, state, x, train=False)[0]))(params)


def test_a_train_step_lists_the_implementations_it_compiled():
    import optax

    model = jn.serial(jn.RNN(jn.LSTM(6)), jn.Dense(3))
    opt = optax.adam(1e-3)
    x = np.ones((2, 5, 4), np.float32)
    step = jn.make_train_step(model, "softmax_cross_entropy", opt)
    step(jn.create_train_state(model, opt, x.shape), (x, np.zeros((2, 5), np.int32)))
    chosen = {c.impl for c in step.implementations if c.op == "lstm_sequence"}
    summary = jn.summary(model, x.shape, print_fn=None)
    # the step's gradient trace picks the same one the summary shows (reverse mode only)
    assert len(chosen) == 1 and chosen.pop() in summary
