"""MultiHeadAttention against Keras 3 and flax with the same weights, its masks, grouped-query
heads, rotary positions, the implementations of its core, and its errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets._impl.choose import record_choices
from jaxnets.layers.positional import apply_rotary

B, T, S, F, H, D = 2, 5, 4, 6, 3, 4


def _init(layer, spec):
    return layer.init(jax.random.key(0), spec)[1:]


def _randomise(params, seed=1):
    """Random biases too (the default initialiser gives zeros, which would hide them)."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(
        tree,
        [0.3 * jax.random.normal(k, a.shape, a.dtype) for k, a in zip(keys, leaves, strict=True)],
    )


def _x(shape, seed=2):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _lengths_mask(lengths, t, s):
    """The (B, T, S) boolean attention mask that lets every query see the valid keys."""
    valid = np.arange(s)[None, :] < np.asarray(lengths)[:, None]
    return np.broadcast_to(valid[:, None, :], (len(lengths), t, s))


# ------------------------------------------------------------------------------- Keras


def _keras_mha(params, q, kv):
    keras = pytest.importorskip("keras", reason="the Keras comparison needs keras")
    layer = keras.layers.MultiHeadAttention(num_heads=H, key_dim=D)
    with jax.numpy_rank_promotion("allow"):
        layer(np.asarray(q), np.asarray(kv))  # builds the weights
        names = ("query", "key", "value", "output")
        weights = [np.asarray(params[n][w]) for n in names for w in ("kernel", "bias")]
        assert [tuple(v.shape) for v in layer.weights] == [w.shape for w in weights]
        for variable, w in zip(layer.weights, weights, strict=True):
            variable.assign(w)
    return layer


@pytest.mark.parametrize("form", ["plain", "causal", "lengths", "cross_padding"])
def test_equals_keras_multi_head_attention(form):
    cross = form == "cross_padding"
    layer = jn.MultiHeadAttention(H, D, causal=form == "causal", cross=cross)
    q = _x((B, T, F))
    kv = _x((B, S, F), seed=3) if cross else q
    spec = (q.shape, kv.shape) if cross else q.shape
    params, state = _init(layer, spec)
    params = _randomise(params)
    keras_layer = _keras_mha(params, q, kv)
    kwargs = {}
    if form == "plain":
        inp = q
    elif form == "causal":
        inp, kwargs = q, {"use_causal_mask": True}
    elif form == "lengths":
        lengths = np.array([5, 2], np.int32)
        inp, kwargs = (q, jnp.asarray(lengths)), {"attention_mask": _lengths_mask(lengths, T, T)}
    else:
        padding = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], np.int32)
        inp = (q, kv, jnp.asarray(padding))
        kwargs = {"attention_mask": np.broadcast_to(padding[:, None, :] > 0, (B, T, S))}
    y, _ = layer.apply(params, state, inp, train=False)
    with jax.numpy_rank_promotion("allow"):
        expected = keras_layer(np.asarray(q), np.asarray(kv), **kwargs)
    np.testing.assert_allclose(np.asarray(y), np.asarray(expected), atol=1e-5, rtol=1e-5)


# -------------------------------------------------------------------------------- flax


@pytest.mark.parametrize("masked", [False, True])
def test_equals_flax_multi_head_dot_product_attention(masked):
    nn = pytest.importorskip("flax.linen", reason="the flax comparison needs flax")
    layer = jn.MultiHeadAttention(H, D, cross=True, out_features=7)
    q, kv = _x((B, T, F)), _x((B, S, 5), seed=3)
    params, state = _init(layer, (q.shape, kv.shape))
    params = _randomise(params)
    flax_params = {
        "query": params["query"],
        "key": params["key"],
        "value": params["value"],
        "out": params["output"],
    }
    mask = np.random.default_rng(0).random((B, 1, T, S)) > 0.4
    mask[..., 0] = True  # every query sees a key
    module = nn.MultiHeadDotProductAttention(num_heads=H, qkv_features=H * D, out_features=7)
    with jax.numpy_rank_promotion("allow"):
        expected = module.apply(
            {"params": flax_params}, q, kv, kv, mask=mask if masked else None, deterministic=True
        )
    inp = (q, kv, jnp.asarray(mask)) if masked else (q, kv)
    y, _ = layer.apply(params, state, inp, train=False)
    np.testing.assert_allclose(np.asarray(y), np.asarray(expected), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------- masks


@pytest.mark.parametrize("impl", ["reference", "xla"])
def test_causal_attention_leaks_nothing(impl):
    layer = jn.MultiHeadAttention(H, D, causal=True, impl=impl)
    x = _x((B, 8, F))
    params, state = _init(layer, x.shape)
    y, _ = layer.apply(params, state, x, train=False)
    for t in (0, 3, 6):
        changed = x.at[:, t + 1 :].set(_x((B, 8 - t - 1, F), seed=10 + t))
        y2, _ = layer.apply(params, state, changed, train=False)
        np.testing.assert_allclose(np.asarray(y2[:, : t + 1]), np.asarray(y[:, : t + 1]), atol=1e-6)
        assert not np.allclose(np.asarray(y2[:, t + 1 :]), np.asarray(y[:, t + 1 :]))


def test_lengths_padding_mask_and_boolean_mask_agree():
    layer = jn.MultiHeadAttention(H, D)
    x = _x((B, T, F))
    params, state = _init(layer, x.shape)
    lengths = np.array([3, 5], np.int32)
    padding = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float32)
    boolean = _lengths_mask(lengths, T, T)
    outs = [
        layer.apply(params, state, (x, jnp.asarray(m)), train=False)[0]
        for m in (lengths, padding, boolean, boolean[:, None])
    ]
    for y in outs[1:]:
        np.testing.assert_allclose(np.asarray(y), np.asarray(outs[0]), atol=1e-6)
    # the padded keys do not matter
    changed = x.at[0, 3:].set(100.0)
    y, _ = layer.apply(params, state, (changed, jnp.asarray(lengths)), train=False)
    np.testing.assert_allclose(np.asarray(y[0, :3]), np.asarray(outs[0][0, :3]), atol=1e-5)


def test_grouped_query_attention_equals_repeated_kv_heads():
    gqa = jn.MultiHeadAttention(4, D, num_kv_heads=2)
    full = jn.MultiHeadAttention(4, D)
    x = _x((B, T, F))
    params, state = _init(gqa, x.shape)
    params = _randomise(params)
    repeated = dict(params)
    for n in ("key", "value"):
        repeated[n] = {
            "kernel": jnp.repeat(params[n]["kernel"], 2, axis=1),
            "bias": jnp.repeat(params[n]["bias"], 2, axis=0),
        }
    for impl_layer in (gqa, jn.MultiHeadAttention(4, D, num_kv_heads=2, impl="xla")):
        y, _ = impl_layer.apply(params, state, x, train=False)
        expected, _ = full.apply(repeated, {}, x, train=False)
        np.testing.assert_allclose(np.asarray(y), np.asarray(expected), atol=1e-5, rtol=1e-5)


def test_rotary_equals_the_complex_rotation():
    x = _x((1, 6, 2, 8))
    positions = jnp.arange(6) + 3
    y = np.asarray(apply_rotary(x, positions, 100.0))
    xs = np.asarray(x, np.float64)
    z = xs[..., :4] + 1j * xs[..., 4:]
    theta = 100.0 ** (-np.arange(4) * 2.0 / 8)
    rotated = z * np.exp(1j * np.asarray(positions)[None, :, None, None] * theta)
    np.testing.assert_allclose(y[..., :4], rotated.real, atol=1e-5)
    np.testing.assert_allclose(y[..., 4:], rotated.imag, atol=1e-5)
    # relative: the logits of rotated queries and keys depend on the offset only
    q, k = _x((1, 1, 1, 8), 4), _x((1, 1, 1, 8), 5)

    def logit(pq, pk):
        return float(jnp.sum(apply_rotary(q, jnp.array([pq])) * apply_rotary(k, jnp.array([pk]))))

    np.testing.assert_allclose(logit(7, 3), logit(14, 10), rtol=1e-5)


def test_attention_dropout_is_random_in_training_and_keeps_the_reference():
    layer = jn.MultiHeadAttention(H, D, dropout=0.5)
    x = _x((B, T, F))
    params, state = _init(layer, x.shape)
    with record_choices() as choices:
        a, _ = layer.apply(params, state, x, key=jax.random.key(1), train=True)
    assert [c.impl for c in choices] == ["reference"]
    b, _ = layer.apply(params, state, x, key=jax.random.key(2), train=True)
    c, _ = layer.apply(params, state, x, train=False)
    assert not np.allclose(np.asarray(a), np.asarray(b))
    with record_choices() as choices:
        d, _ = layer.apply(params, state, x, train=False)
    assert [ch.impl for ch in choices] == ["xla"] and np.allclose(np.asarray(c), np.asarray(d))


# ----------------------------------------------------------------------- implementations


def test_cudnn_is_refused_off_nvidia_gpus_or_in_float32():
    layer = jn.MultiHeadAttention(2, 8, causal=True, impl="cudnn")
    x = _x((B, T, 16))
    params, state = _init(jn.MultiHeadAttention(2, 8, causal=True), x.shape)
    why = "float16 or bfloat16" if jax.default_backend() == "gpu" else "needs an NVIDIA GPU"
    with pytest.raises(jn.LayerError, match=f"{why}.*impl='reference'"):
        layer.apply(params, state, x, train=False)


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="cuDNN attention needs an NVIDIA GPU")
@pytest.mark.parametrize("lengths", [False, True])
def test_cudnn_equals_the_reference_in_bfloat16(lengths):
    x = _x((4, 128, 256)).astype(jnp.bfloat16)
    layer = jn.MultiHeadAttention(4, 64, causal=True, impl="cudnn")
    reference = jn.MultiHeadAttention(4, 64, causal=True, impl="reference")
    params, state = _init(layer, jax.ShapeDtypeStruct(x.shape, x.dtype))
    inp = (x, jnp.array([128, 100, 64, 1], jnp.int32)) if lengths else x

    def loss(net, p):
        y = net.apply(p, state, inp, train=False)[0].astype(jnp.float32)
        return jnp.sum(jnp.sin(y)), y

    (_, y), g = jax.value_and_grad(lambda p: loss(layer, p), has_aux=True)(params)
    (_, ref), ref_g = jax.value_and_grad(lambda p: loss(reference, p), has_aux=True)(params)
    np.testing.assert_allclose(np.asarray(y), np.asarray(ref), atol=3e-2, rtol=3e-2)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(ref_g), strict=True):
        scale = float(jnp.max(jnp.abs(b))) + 1e-6
        assert float(jnp.max(jnp.abs(a - b))) / scale < 5e-2


# -------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: jn.MultiHeadAttention(4, num_kv_heads=3), ValueError, "num_kv_heads must divide"),
        (lambda: jn.MultiHeadAttention(0), ValueError, "heads must be a positive int"),
        (lambda: jn.MultiHeadAttention(2, dropout=1.0), ValueError, "dropout must be"),
        (lambda: jn.MultiHeadAttention(2, impl="fast"), ValueError, "impl must be one of"),
        (lambda: jn.MultiHeadAttention(2, cross=True, causal=True), ValueError, "cross attention"),
        (lambda: jn.MultiHeadAttention(2, causal="yes"), TypeError, "causal must be True or"),
    ],
)
def test_bad_constructor_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_inputs_give_clear_errors():
    layer = jn.MultiHeadAttention(2)
    params, state = _init(layer, (B, T, 4))
    x = _x((B, T, 4))
    cases = [
        (jn.MultiHeadAttention(4), (B, T, 6), "not a multiple of heads=4"),
        (layer, (B, T), "shape \\(batch, time, features\\)"),
    ]
    for bad, spec, match in cases:
        with pytest.raises(jn.LayerError, match=match):
            bad.init(jax.random.key(0), spec)
    with pytest.raises(jn.LayerError, match="lengths must lie in"):
        layer.apply(params, state, (x, jnp.array([6, 1])), train=False)
    with pytest.raises(jn.LayerError, match="lengths_or_mask must be"):
        layer.apply(params, state, (x, jnp.ones((B, 3))), train=False)
    with pytest.raises(jn.LayerTypeError, match="must be boolean"):
        layer.apply(params, state, (x, jnp.ones((B, T, T))), train=False)
    with pytest.raises(jn.LayerTypeError, match="through an Embedding"):
        layer.apply(params, state, jnp.ones((B, T, 4), jnp.int32), train=False)
    with pytest.raises(jn.LayerError, match="expected \\(x, context\\)"):
        jn.MultiHeadAttention(2, cross=True).init(jax.random.key(0), (B, T, 4))
    dropout = jn.MultiHeadAttention(2, dropout=0.1)
    with pytest.raises(jn.LayerError, match="needs key="):
        dropout.apply(params, state, x, train=True)
    cached = jn.MultiHeadAttention(2, causal=True, cache_size=6)
    params, state = _init(cached, (B, T, 4))
    _, state = cached.apply(params, state, x, train=False)
    with pytest.raises(jn.LayerError, match="5 are filled and 5 more came"):
        cached.apply(params, state, x, train=False)
    with pytest.raises(jn.LayerError, match="initialise the state for this batch"):
        cached.apply(params, _init(cached, (1, T, 4))[1], x, train=False)


def test_xla_equals_the_reference_with_grouped_heads_and_every_mask_form():
    x = _x((B, T, 8))
    boolean = jax.random.bernoulli(jax.random.key(2), 0.6, (B, T, T)).at[..., 0].set(True)
    padding = jnp.array([[1, 1, 0, 1, 0], [1, 1, 1, 1, 1]])
    for extra in (jnp.array([5, 3]), boolean, padding):
        outs = []
        for impl in ("reference", "xla"):
            layer = jn.MultiHeadAttention(4, num_kv_heads=2, causal=True, impl=impl)
            params, state = _init(layer, x.shape)
            with record_choices() as choices:
                outs.append(layer.apply(params, state, (x, extra), train=False)[0])
            assert [c.impl for c in choices] == [impl]
        np.testing.assert_allclose(np.asarray(outs[1]), np.asarray(outs[0]), atol=1e-6)
