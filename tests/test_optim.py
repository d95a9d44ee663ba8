"""Optimizer helpers: masks and freezing by path, named optimizers, accumulation, clipping."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets.optim import (
    OPTIMIZERS,
    SCHEDULES,
    decay_mask,
    freeze,
    learning_rate,
    make_optimizer,
    path_mask,
    schedule,
    wrap,
)

MODEL = jn.serial(("body", jn.serial(jn.Dense(8), jn.LayerNorm())), ("head", jn.Dense(2)))


def _params():
    return MODEL.init(jax.random.key(0), (4, 3))[1]


def test_decay_mask_excludes_biases_and_norm_scales():
    mask = decay_mask(_params())
    assert mask["body"]["dense_0"] == {"kernel": True, "bias": False}
    assert mask["body"]["layernorm_0"] == {"scale": False, "bias": False}
    assert mask["head"] == {"kernel": True, "bias": False}
    assert decay_mask(_params(), exclude=["head/*"])["head"]["kernel"] is False


def test_path_mask_globs():
    mask = path_mask(_params(), ["body/*/bias", "head/kernel"])
    assert mask["body"]["dense_0"]["bias"] and mask["body"]["layernorm_0"]["bias"]
    assert mask["head"]["kernel"] and not mask["head"]["bias"]
    assert path_mask(_params(), "head/*")["head"]["bias"]


def test_weight_decay_leaves_biases_alone():
    params = _params()
    params = jax.tree.map(lambda p: p + 1.0, params)
    opt = make_optimizer("adamw", 0.1, weight_decay=0.5)
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = opt.update(zero, opt.init(params), params)
    np.testing.assert_allclose(updates["head"]["kernel"], -0.1 * 0.5 * params["head"]["kernel"])
    np.testing.assert_array_equal(updates["head"]["bias"], 0.0)
    np.testing.assert_array_equal(updates["body"]["layernorm_0"]["scale"], 0.0)
    sgd = make_optimizer("sgd", 0.1, weight_decay=0.5)
    updates, _ = sgd.update(zero, sgd.init(params), params)
    np.testing.assert_allclose(updates["head"]["kernel"], -0.05 * params["head"]["kernel"])
    np.testing.assert_array_equal(updates["head"]["bias"], 0.0)


def test_freeze_keeps_matching_params_fixed_in_fit():
    data = jn.data.two_spirals(32)
    model = jn.models.mlp((8,), 2)
    start = jn.create_train_state(model, optax.adam(1e-2), (16, 2), seed=0)
    frozen_opt = freeze(optax.adam(1e-2), ["hidden_0/*"])
    result = jn.fit(model, data, optimizer=frozen_opt, epochs=2, batch_size=16, progress=False)
    np.testing.assert_array_equal(
        result.state.params["hidden_0"]["dense"]["kernel"],
        start.params["hidden_0"]["dense"]["kernel"],
    )
    assert not np.array_equal(
        result.state.params["logits"]["kernel"], start.params["logits"]["kernel"]
    )


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_named_optimizer_steps_and_records_lr(name):
    params = _params()
    opt = make_optimizer(name, schedule("cosine", 0.1, 10), weight_decay=1e-3)
    state = opt.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, state = opt.update(grads, state, params)
    assert float(jnp.abs(updates["head"]["kernel"]).sum()) > 0
    assert float(learning_rate(state)) == pytest.approx(0.1)


def test_unknown_names():
    with pytest.raises(ValueError, match=r"make_optimizer: name must be one of 'sgd'.*'adagrad'"):
        make_optimizer("adagrad", 0.1)
    with pytest.raises(ValueError, match=r"schedule: kind must be one of 'constant'.*'cyclic'"):
        schedule("cyclic", 0.1, 10)


@pytest.mark.parametrize("kind", SCHEDULES)
def test_schedules_start_at_peak_or_warm_up(kind):
    s = schedule(kind, 0.1, 100, warmup_steps=10)
    first = float(s(0))
    assert first == pytest.approx(0.0 if kind == "warmup_cosine" else 0.1)
    assert float(s(99)) <= 0.1 + 1e-9


def test_learning_rate_is_none_without_injection():
    assert learning_rate(optax.adam(0.1).init(_params())) is None


def test_accumulation_equals_one_large_batch():
    model = jn.Dense(2)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = np.arange(16, dtype=np.int32) % 2
    big_opt = optax.sgd(0.5)
    acc_opt = wrap(optax.sgd(0.5), accumulate_steps=2)
    big = jn.create_train_state(model, big_opt, (16, 3))
    acc = jn.create_train_state(model, acc_opt, (8, 3))
    big, _ = jn.make_train_step(model, "softmax_cross_entropy", big_opt)(big, (x, y))
    step = jn.make_train_step(model, "softmax_cross_entropy", acc_opt)
    acc, _ = step(acc, (x[:8], y[:8]))
    acc, _ = step(acc, (x[8:], y[8:]))
    np.testing.assert_allclose(acc.params["kernel"], big.params["kernel"], rtol=1e-5, atol=1e-6)


def test_clipping_bounds_the_update():
    params = {"w": jnp.zeros(4)}
    opt = wrap(optax.sgd(1.0), clip_norm=0.5)
    updates, _ = opt.update({"w": jnp.full(4, 10.0)}, opt.init(params), params)
    assert float(jnp.linalg.norm(updates["w"])) == pytest.approx(0.5, rel=1e-5)
    with pytest.raises(ValueError, match=r"clip_norm must be a finite number > 0, got 0\.0"):
        wrap(optax.sgd(1.0), clip_norm=0.0)
    with pytest.raises(ValueError, match="accumulate_steps must be a positive int, got 0"):
        wrap(optax.sgd(1.0), accumulate_steps=0)


def test_step_boundaries_on_distinct_steps_decay_once_each():
    s = schedule("step", 1.0, 10, decay_rate=0.5, boundaries=(0.2, 0.55))
    assert [float(s(t)) for t in (0, 3, 6, 9)] == pytest.approx([1.0, 0.5, 0.25, 0.25])
    with pytest.raises(ValueError, match=r"0.5 and 0.55 both fall on step 5 of total_steps=10"):
        schedule("step", 1.0, 10, boundaries=(0.5, 0.55))


def test_numpy_numbers_are_accepted_and_schedules_are_learning_rates():
    opt = make_optimizer("sgd", np.float32(0.1), accumulate_steps=np.int64(1))
    assert float(learning_rate(opt.init(_params()))) == pytest.approx(0.1)
    assert make_optimizer("adam", schedule("cosine", 1e-3, np.int64(10))) is not None
