"""Whole Keras models into jaxnets (``jaxnets.interop.keras.load_model``) and the layer
options they need, each compared with Keras (JAX backend) on the same weights.

Models get random weights (BatchNorm random moving statistics too), are saved with
``model.save(tmp_path / "m.keras")`` and loaded without keras; outputs must equal Keras's
to 1e-5 in float32. Shapes are tiny; each model is built once per module.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn

keras = pytest.importorskip("keras", reason="keras 3 (JAX backend) is the reference here")
L = keras.layers

from jaxnets.interop.keras.model import KerasConversionError, load_model  # noqa: E402

RNG = np.random.default_rng(0)


def _built(layer, shape):
    """A Keras layer built for ``shape`` with random weights (Keras broadcasts implicitly)."""
    with jax.numpy_rank_promotion("allow"):
        layer.build(shape)
    _randomize(layer)
    return layer


def _sequential(layers):
    with jax.numpy_rank_promotion("allow"):
        return keras.Sequential(layers)


def _randomize(model) -> None:
    for w in model.weights:
        if "moving_variance" in w.path:
            w.assign(RNG.uniform(0.5, 1.5, w.shape).astype("float32"))
        else:
            w.assign((0.4 * RNG.normal(size=w.shape)).astype("float32"))


def _keras(model, x):
    with jax.numpy_rank_promotion("allow"):
        return np.asarray(model(x, training=False))


def _save(model, path) -> None:
    with warnings.catch_warnings():
        # keras 3.15 converts its jax Variables with np.array(x), which NumPy 2 warns about.
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        with jax.numpy_rank_promotion("allow"):
            model.save(path)


def _roundtrip(model, path):
    _randomize(model)
    _save(model, path)
    return load_model(path)


def _cnn():
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Rescaling(0.5, offset=0.1),
            L.Conv2D(4, 3, padding="same", activation="relu"),
            L.BatchNormalization(),
            L.DepthwiseConv2D(3, depth_multiplier=2),
            L.SeparableConv2D(5, 3, padding="same", activation="tanh"),
            L.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1),
            L.Conv2DTranspose(2, 2, strides=1, padding="valid", use_bias=False),
            L.ZeroPadding2D(((1, 0), (0, 2))),
            L.MaxPooling2D(2),
            L.AveragePooling2D(2, strides=1, padding="same"),
            L.GroupNormalization(2, epsilon=1e-3),
            L.LayerNormalization(axis=[1, 2, 3]),
            L.Activation("gelu"),
            L.Dropout(0.3),
            L.Flatten(),
            L.Dense(12, activation="softmax"),
            L.Reshape((4, 3)),
            L.ZeroPadding1D(1),
            L.Conv1D(4, 2, padding="causal", dilation_rate=2),
            L.MaxPooling1D(2, padding="same"),
            L.AveragePooling1D(1),
            L.GlobalAveragePooling1D(),
        ]
    )


def _volumes():
    return keras.Sequential(
        [
            keras.Input((4, 4, 4, 2)),
            L.ZeroPadding3D(1),
            L.Conv3D(3, 2, strides=2, activation="elu"),
            L.MaxPooling3D(1),
            L.AveragePooling3D(2, padding="same"),
            L.GlobalMaxPooling3D(),
        ]
    )


def _branches():
    x = keras.Input((6, 6, 2))
    a = L.Conv2D(3, 3, padding="same", name="wide")(x)
    b = L.Conv2D(3, 1, use_bias=False, name="narrow")(x)
    b = L.BatchNormalization(center=False, epsilon=1e-2, name="bn")(b)
    s = L.Add()([a, b])
    c = L.Concatenate()([s, x])
    c = L.GlobalMaxPooling2D()(c)
    d = L.Dense(4, activation="swish", name="head")(c)
    e = L.Dense(4, activation="leaky_relu")(c)
    return keras.Model(x, L.Concatenate(axis=-1)([d, e]))


def _two_inputs():
    a, b = keras.Input((5,), name="a"), keras.Input((3,), name="b")
    joined = L.Concatenate()([L.Dense(4, activation="relu")(a), b])
    return keras.Model([a, b], [L.Dense(2)(joined), L.Dense(1, activation="sigmoid")(joined)])


def _token_stack():
    return keras.Sequential(
        [
            keras.Input((7,), dtype="int32"),
            L.Embedding(10, 4, mask_zero=True),
            L.LSTM(5, return_sequences=True),
            L.LayerNormalization(),
            L.GRU(3, reset_after=False, return_sequences=True, recurrent_activation="hard_sigmoid"),
            L.Dense(2),
        ]
    )


def _masked_functional():
    x = keras.Input((6, 4))
    m = L.Masking()(x)
    h = L.SimpleRNN(3, return_sequences=True, use_bias=False)(m)
    h = L.Dropout(0.2)(h)
    h = L.Bidirectional(L.LSTM(3, return_sequences=True))(h)
    h = L.Bidirectional(L.GRU(2), merge_mode="sum")(h)
    return keras.Model(x, L.Dense(2)(h))


def _ids():
    ids = RNG.integers(1, 10, size=(3, 7))
    ids[1, 4:] = 0
    ids[2, 2:] = 0
    return jnp.asarray(ids, jnp.int32)


def _padded():
    x = RNG.normal(size=(3, 6, 4)).astype("float32")
    x[1, 4:] = 0.0
    x[2, 1:] = 0.0
    return jnp.asarray(x)


MODELS = {
    "sequential_cnn": (_cnn, lambda: jnp.asarray(RNG.normal(size=(2, 8, 8, 3)), jnp.float32)),
    "sequential_volumes": (
        _volumes,
        lambda: jnp.asarray(RNG.normal(size=(2, 4, 4, 4, 2)), jnp.float32),
    ),
    "functional_branches": (
        _branches,
        lambda: jnp.asarray(RNG.normal(size=(2, 6, 6, 2)), jnp.float32),
    ),
    "functional_two_inputs_two_outputs": (
        _two_inputs,
        lambda: tuple(jnp.asarray(RNG.normal(size=(2, n)), jnp.float32) for n in (5, 3)),
    ),
    "sequential_masked_lstm_gru": (_token_stack, _ids),
    "functional_masked_bidirectional": (_masked_functional, _padded),
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Each model saved with random weights and loaded: ``{id: (keras_model, x, net, p, s)}``."""
    out = {}
    for name, (build, make_x) in MODELS.items():
        with jax.numpy_rank_promotion("allow"):
            model = build()
        x = make_x()
        net, params, state = _roundtrip(model, tmp_path_factory.mktemp(name) / "m.keras")
        out[name] = (model, x, net, params, state)
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_load_model_matches_keras(loaded, name):
    model, x, net, params, state = loaded[name]
    got, _ = jax.jit(lambda p, s, x: net.apply(p, s, x, train=False))(params, state, x)
    with jax.numpy_rank_promotion("allow"):
        want = model(list(x) if isinstance(x, tuple) else x, training=False)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-5)


def test_load_model_params_and_state_are_keyed_by_layer_name(loaded):
    _, _, net, params, state = loaded["functional_branches"]
    assert {"wide", "narrow", "head", "bn"} <= set(params)
    assert set(state["bn"]) == {"mean", "var"}
    assert "bias" not in params["bn"]  # center=False: no beta
    _, _, seq, _, _ = loaded["sequential_cnn"]
    assert seq.kind == "serial"


def test_masked_steps_hold_the_previous_output(loaded):
    """A padded step's output repeats the last valid one, as Keras's (not zeros)."""
    _, x, net, params, state = loaded["sequential_masked_lstm_gru"]
    y, _ = net.apply(params, state, x, train=False)
    np.testing.assert_array_equal(np.asarray(y[2, 2:]), np.broadcast_to(y[2, 1], (5, 2)))


def test_batch_norm_trains_on_batch_statistics_as_keras(tmp_path):
    model = _sequential(
        [keras.Input((5,)), L.BatchNormalization(momentum=0.9, name="bn"), L.Dense(2)]
    )
    net, params, state = _roundtrip(model, tmp_path / "m.keras")
    x = jnp.asarray(RNG.normal(size=(8, 5)), jnp.float32)
    got, new_state = net.apply(params, state, x, train=True)
    with jax.numpy_rank_promotion("allow"):
        want = np.asarray(model(x, training=True))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    bn = model.layers[0]
    np.testing.assert_allclose(new_state["bn"]["var"], np.asarray(bn.moving_variance), rtol=1e-5)


# ---- the layer options, layer by layer against Keras ----


def _cell_params(keras_layer):
    w = [jnp.asarray(v.value) for v in keras_layer.weights]
    p = {"kernel": w[0], "recurrent_kernel": w[1]}
    if len(w) == 3 and w[2].ndim == 2:
        p["bias"], p["recurrent_bias"] = w[2][0], w[2][1]
    elif len(w) == 3:
        p["bias"] = w[2]
    return p


RECURRENT = [
    ("gru_reset_before", lambda: L.GRU(3, reset_after=False, return_sequences=True),
     lambda **kw: jn.GRU(3, reset_after=False, **kw), "hold"),
    ("gru_no_bias_relu", lambda: L.GRU(3, use_bias=False, activation="relu", return_sequences=True),
     lambda **kw: jn.GRU(3, use_bias=False, activation="relu", **kw), "hold"),
    ("lstm_hard_sigmoid_no_bias",
     lambda: L.LSTM(3, use_bias=False, recurrent_activation="hard_sigmoid", return_sequences=True),
     lambda **kw: jn.LSTM(3, use_bias=False, recurrent_activation=jax.nn.hard_sigmoid, **kw),
     "hold"),
    ("lstm_zero_output_for_mask",
     lambda: L.LSTM(3, return_sequences=True, zero_output_for_mask=True),
     lambda **kw: jn.LSTM(3, **kw), "zero"),
    ("simple_rnn_no_bias", lambda: L.SimpleRNN(3, use_bias=False, return_sequences=True),
     lambda **kw: jn.SimpleRNN(3, use_bias=False, **kw), "hold"),
]  # fmt: skip


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(
    ("name", "keras_layer", "cell", "held"), RECURRENT, ids=[r[0] for r in RECURRENT]
)
def test_recurrent_options_match_keras(name, keras_layer, cell, held, fused):
    x = _padded()
    mask = jnp.any(x != 0, axis=-1)
    layer = keras_layer()
    _built(layer, (3, 6, 4))
    with jax.numpy_rank_promotion("allow"):
        want = np.asarray(layer(x, mask=mask))
    rnn = jn.RNN(cell(fused=fused), masked_output=held)
    got, _ = rnn.apply(_cell_params(layer), {}, (x, mask), train=False)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


def test_initial_state_without_lengths_matches_keras():
    x = _padded()
    layer = L.LSTM(3, return_sequences=True)
    _built(layer, (3, 6, 4))
    h, c = (jnp.asarray(RNG.normal(size=(3, 3)), jnp.float32) for _ in range(2))
    with jax.numpy_rank_promotion("allow"):
        want = np.asarray(layer(x, initial_state=[h, c]))
    rnn = jn.RNN(jn.LSTM(3))
    got, _ = rnn.apply(_cell_params(layer), {}, (x, {"h": h, "c": c}), train=False)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    same, _ = rnn.apply(_cell_params(layer), {}, (x, None, {"h": h, "c": c}), train=False)
    np.testing.assert_array_equal(np.asarray(same), np.asarray(got))


def test_masking_and_embedding_masks_match_keras():
    x = _padded()
    (y, mask), _ = jn.Masking().apply({}, {}, x, train=False)
    k = L.Masking()
    with jax.numpy_rank_promotion("allow"):
        np.testing.assert_array_equal(np.asarray(y), np.asarray(k(x)))
    np.testing.assert_array_equal(np.asarray(mask), np.asarray(k.compute_mask(x)))
    ids = _ids()
    emb = L.Embedding(10, 4, mask_zero=True)
    with jax.numpy_rank_promotion("allow"):
        emb.build((3, 7))
    table = jnp.asarray(emb.weights[0].value)
    (vectors, ids_mask), _ = jn.Embedding(10, 4, mask_zero=True).apply(
        {"embedding": table}, {}, ids, train=False
    )
    np.testing.assert_allclose(np.asarray(vectors), np.asarray(emb(ids)), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(ids_mask), np.asarray(emb.compute_mask(ids)))


@pytest.mark.parametrize("axis", [-1, (1, 2), (2, 3)])
def test_layer_norm_axes_match_keras(axis):
    x = jnp.asarray(RNG.normal(size=(2, 3, 4, 5)), jnp.float32)
    k = L.LayerNormalization(axis=list(axis) if isinstance(axis, tuple) else axis)
    _built(k, x.shape)
    gamma, beta = (jnp.asarray(w.value) for w in k.weights)
    y, _ = jn.LayerNorm(1e-3, axis=axis).apply({"scale": gamma, "bias": beta}, {}, x, train=False)
    with jax.numpy_rank_promotion("allow"):
        np.testing.assert_allclose(np.asarray(y), np.asarray(k(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("padding", "strides", "output_padding", "kernel"),
    [
        ("same", 2, 1, 3),
        ("same", 3, 2, 4),
        ("valid", 2, 1, 3),
        ("valid", 2, 0, 2),
        ("same", 2, None, 3),
    ],
)
def test_conv_transpose_output_padding_matches_keras(padding, strides, output_padding, kernel):
    x = jnp.asarray(RNG.normal(size=(2, 4, 5, 3)), jnp.float32)
    k = L.Conv2DTranspose(
        2, kernel, strides=strides, padding=padding, output_padding=output_padding
    )
    _built(k, x.shape)
    w, b = (jnp.asarray(v.value) for v in k.weights)
    layer = jn.ConvTranspose(2, kernel, strides, padding.upper(), output_padding=output_padding)
    params = {"kernel": jnp.swapaxes(w[::-1, ::-1], -1, -2), "bias": b}
    y, _ = layer.apply(params, {}, x, train=False)
    with jax.numpy_rank_promotion("allow"):
        want = np.asarray(k(x))
    assert y.shape == want.shape
    np.testing.assert_allclose(np.asarray(y), want, rtol=1e-5, atol=1e-5)


def test_int_kernel_size_means_the_layers_rank():
    x = jnp.asarray(RNG.normal(size=(2, 9, 3)), jnp.float32)
    k = L.Conv1D(4, 3, strides=2)
    _built(k, x.shape)
    w, b = (jnp.asarray(v.value) for v in k.weights)
    layer = jn.Conv(4, 3, strides=2, padding="VALID", rank=1)
    _, params, _ = layer.init(jax.random.key(0), x.shape)
    assert params["kernel"].shape == w.shape == (3, 3, 4)
    y, _ = layer.apply({"kernel": w, "bias": b}, {}, x, train=False)
    with jax.numpy_rank_promotion("allow"):
        np.testing.assert_allclose(np.asarray(y), np.asarray(k(x)), rtol=1e-5, atol=1e-5)
    # without rank, an int still means 2-D, as before
    assert jn.Conv(4, 3).init(jax.random.key(0), (1, 5, 5, 2))[1]["kernel"].shape == (3, 3, 2, 4)
    with pytest.raises(ValueError, match="rank=1"):
        jn.Conv(4, (3, 3), rank=1)


# ---- errors ----


def test_unsupported_layer_is_named_with_its_config(tmp_path):
    model = _sequential([keras.Input((4, 4, 2)), L.UpSampling2D(2, name="up")])
    _save(model, tmp_path / "m.keras")
    with pytest.raises(KerasConversionError, match=r"'up' \(UpSampling2D\).*config \{"):
        load_model(tmp_path / "m.keras")


@pytest.mark.parametrize(
    ("layer", "option"),
    [
        (lambda: L.LSTM(3, go_backwards=True), "go_backwards=True"),
        (lambda: L.GRU(3, recurrent_dropout=0.1), "recurrent_dropout=0.1"),
        (lambda: L.Conv1D(2, 3, data_format="channels_first"), "data_format='channels_first'"),
        (lambda: L.Dense(3, activation="log_softmax"), "activation='log_softmax'"),
    ],
)
def test_unsupported_option_is_named(tmp_path, layer, option):
    model = _sequential([keras.Input((5, 4)), layer()])
    _save(model, tmp_path / "m.keras")
    with pytest.raises(KerasConversionError, match=f"{option}.*not supported"):
        load_model(tmp_path / "m.keras")


@pytest.mark.filterwarnings("ignore:.*does not support masking:UserWarning")  # Keras's own
def test_a_layer_without_mask_support_drops_the_mask_as_keras(tmp_path):
    model = _sequential([keras.Input((5, 2)), L.Masking(), L.Flatten(), L.Dense(3)])
    x = _padded()[:, :5, :2]
    net, params, state = _roundtrip(model, tmp_path / "m.keras")
    got, _ = net.apply(params, state, x, train=False)
    np.testing.assert_allclose(np.asarray(got), _keras(model, x), rtol=1e-5, atol=1e-5)


def test_masks_into_a_merge_are_refused(tmp_path):
    x = keras.Input((5, 2))
    m = L.Masking()(x)
    with jax.numpy_rank_promotion("allow"):
        model = keras.Model(x, L.Add(name="merge")([m, m]))
    _save(model, tmp_path / "m.keras")
    with pytest.raises(KerasConversionError, match=r"'merge' \(Add\): the mask"):
        load_model(tmp_path / "m.keras")


def test_not_a_keras_archive(tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not a \.keras archive"):
        load_model(path)
