"""Mixed precision: bfloat16/float16 compute with float32 parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets.train.precision import Policy, policy

#: Per-epoch training loss of bfloat16 (or float16) compute may differ from float32's by
#: at most this much (absolute) on the digits run below; measured differences are ~1e-3.
LOSS_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def digits():
    return jn.data.load_digits()


@pytest.fixture(scope="module")
def float32_run(digits):
    return _fit(digits, "float32")


def _fit(digits, precision):
    train, test = digits
    return jn.fit(
        jn.models.mlp((64,), 10),
        train,
        optimizer=optax.adam(3e-3),
        epochs=6,
        batch_size=32,
        val_data=test,
        progress=False,
        precision=precision,
    )


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_loss_curve_within_tolerance_of_float32(digits, float32_run, precision):
    run = _fit(digits, precision)
    ref = np.asarray(float32_run.history["loss"])
    got = np.asarray(run.history["loss"])
    assert ref[-1] < 0.5 * ref[0]  # it trained
    np.testing.assert_allclose(got, ref, atol=LOSS_TOLERANCE)
    assert abs(run.history["val_accuracy"][-1] - float32_run.history["val_accuracy"][-1]) < 0.02
    for leaf in jax.tree.leaves(run.state.params):
        assert leaf.dtype == jnp.float32


def test_train_step_computes_in_bfloat16():
    model = jn.serial(jn.Dense(8), jn.Relu(), jn.Dense(2))
    opt = optax.sgd(0.1)
    ts = jn.create_train_state(model, opt, (4, 3))
    batch = (np.ones((4, 3), np.float32), np.zeros(4, np.int32))
    mixed = jn.make_train_step(model, "softmax_cross_entropy", opt, precision="bfloat16")
    plain = jn.make_train_step(model, "softmax_cross_entropy", opt)
    assert "bf16" in mixed.lower(ts, batch).as_text()
    assert "bf16" not in plain.lower(ts, batch).as_text()
    predict = jn.make_predict(model, precision="bfloat16")
    assert predict(ts.params, ts.state, batch[0]).dtype == jnp.bfloat16


def test_float16_skips_overflowing_updates():
    model = jn.Dense(2)
    opt = optax.sgd(0.1)
    ts = jn.create_train_state(model, opt, (2, 3))
    step = jn.make_train_step(
        model, "squared_error", opt, precision=Policy("float16", 1e3), donate=False
    )
    # Targets so large that the scaled float16 gradients overflow: the update is skipped.
    big = (np.ones((2, 3), np.float32), np.full((2, 2), 3e4, np.float32))
    new, _ = step(ts, big)
    np.testing.assert_array_equal(new.params["kernel"], ts.params["kernel"])
    assert int(new.step) == 1
    small = (np.ones((2, 3), np.float32), np.ones((2, 2), np.float32))
    new, _ = step(ts, small)
    assert not np.array_equal(new.params["kernel"], ts.params["kernel"])


def test_policy_names_and_errors():
    assert policy(None) == Policy("float32", 1.0)
    assert policy("float16").loss_scale == 2.0**15
    assert policy("bfloat16").loss_scale == 1.0
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        policy("fp8")
    with pytest.raises(ValueError, match="loss_scale must be > 0"):
        policy("float16", 0.0)
    ints = Policy("bfloat16").cast_inputs(jnp.arange(3))
    assert ints.dtype == jnp.int32
