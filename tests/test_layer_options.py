"""The layer options added for Keras models (issue 16), without Keras: what they compute
where Keras is not needed to say it, and the errors for bad values. The comparisons with
Keras are in ``tests/test_interop_keras_models.py``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn

K = jax.random.key(0)


def test_hold_repeats_the_last_valid_output_and_zero_keeps_zeros():
    x = jax.random.normal(jax.random.key(1), (2, 5, 3))
    mask = jnp.array([[1, 1, 0, 1, 0], [1, 0, 0, 0, 0]])
    outputs = {}
    for held in ("zero", "hold"):
        layer = jn.RNN(jn.GRU(4), masked_output=held)
        _, params, _ = layer.init(K, ((2, 5, 3), (2, 5)))
        outputs[held], _ = layer.apply(params, {}, (x, mask), train=False)
    zero, hold = outputs["zero"], outputs["hold"]
    valid = mask.astype(bool)
    np.testing.assert_array_equal(np.asarray(zero[valid]), np.asarray(hold[valid]))
    assert float(jnp.abs(zero[~valid]).max()) == 0.0
    np.testing.assert_array_equal(np.asarray(hold[0, 2]), np.asarray(hold[0, 1]))
    np.testing.assert_array_equal(np.asarray(hold[0, 4]), np.asarray(hold[0, 3]))
    np.testing.assert_array_equal(np.asarray(hold[1, 1:]), np.broadcast_to(hold[1, 0], (4, 4)))


def test_stacked_and_bidirectional_take_masked_output():
    x, lengths = jnp.ones((2, 4, 3)), jnp.array([4, 2])
    spec = ((2, 4, 3), jax.ShapeDtypeStruct((2,), jnp.int32))
    stacked = jn.StackedRNN([jn.LSTM(2), jn.GRU(2)], masked_output="hold")
    _, params, _ = stacked.init(K, spec)
    y, _ = stacked.apply(params, {}, (x, lengths), train=False)
    np.testing.assert_array_equal(np.asarray(y[1, 2:]), np.broadcast_to(y[1, 1], (2, 2)))
    both = jn.Bidirectional(jn.LSTM(2), masked_output="hold")
    _, params, _ = both.init(K, spec)
    y, _ = both.apply(params, {}, (x, lengths), train=False)
    # forwards, the padded steps repeat step 1; backwards they come before any valid step
    np.testing.assert_array_equal(np.asarray(y[1, 2:, :2]), np.broadcast_to(y[1, 1, :2], (2, 2)))
    assert float(jnp.abs(y[1, 2:, 2:]).max()) == 0.0
    assert float(jnp.abs(y[1, :2, 2:]).min()) > 0.0


def test_gru_reset_before_has_no_recurrent_bias_and_differs_from_reset_after():
    x = jax.random.normal(jax.random.key(2), (2, 3, 2))
    before, after = jn.RNN(jn.GRU(3, reset_after=False)), jn.RNN(jn.GRU(3))
    _, p_after, _ = after.init(K, x.shape)
    p_before = {k: v for k, v in p_after.items() if k != "recurrent_bias"}
    p_before["recurrent_kernel"] = p_after["recurrent_kernel"]
    y_before, _ = before.apply(p_before, {}, x, train=False)
    y_after, _ = after.apply({**p_after, "recurrent_bias": jnp.zeros(9)}, {}, x, train=False)
    assert sorted(before.init(K, x.shape)[1]) == ["bias", "kernel", "recurrent_kernel"]
    assert float(jnp.abs(y_before - y_after).max()) > 1e-4  # r * (h U) is not (r * h) U


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: jn.RNN(jn.LSTM(2), masked_output="keep"), ValueError, "masked_output"),
        (lambda: jn.Bidirectional(jn.LSTM(2), masked_output=None), TypeError, "masked_output"),
        (lambda: jn.GRU(2, reset_after="no"), TypeError, "reset_after"),
        (lambda: jn.LSTM(2, use_bias=1), TypeError, "use_bias"),
        (lambda: jn.LSTM(2, recurrent_activation="nope"), ValueError, "nope"),
        (lambda: jn.LSTM(2, use_bias=False, impl="chunked"), ValueError, "impl='chunked'"),
        (lambda: jn.Conv(4, 3, rank=4), ValueError, "rank"),
        (lambda: jn.Conv(4, (3, 3), rank=1), ValueError, "rank=1"),
        (lambda: jn.ConvTranspose(2, 3, strides=2, output_padding=2), ValueError, "output_padding"),
        (
            lambda: jn.ConvTranspose(2, 3, padding=((1, 1), (1, 1)), output_padding=0),
            ValueError,
            "output_padding",
        ),
        (lambda: jn.LayerNorm(axis="last"), TypeError, "axis"),
        (lambda: jn.Embedding(4, 2, mask_zero="yes"), TypeError, "mask_zero"),
        (lambda: jn.Masking("0"), TypeError, "mask_value"),
    ],
)
def test_bad_option_values_are_named(make, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(")):
        make()


def test_bad_inputs_to_the_new_forms_are_named():
    with pytest.raises(jn.LayerError, match="distinct axes"):
        jn.LayerNorm(axis=(1, -2)).init(K, (2, 3, 4))
    with pytest.raises(jn.LayerError, match="Masking"):
        jn.Masking().init(K, (2, 3))
    embed = jn.Embedding(5, 2, mask_zero=True)
    _, params, _ = embed.init(K, jax.ShapeDtypeStruct((1, 3), jnp.int32))
    with pytest.raises(jn.LayerError, match="mask_zero"):
        embed.apply(params, {}, (jnp.zeros((1, 3), jnp.int32), jnp.array([2])), train=False)
