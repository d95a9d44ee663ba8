"""The GAN models (jaxnets.models.gan) and objectives (jaxnets.gan): shapes, parameter
counts by hand, the DCGAN initialisation and layout, the objectives' contract, gradients,
loss values against numpy, and a short real training run on the 8x8 digits.

Everything concrete runs under ``jax.jit`` (one compilation per test function instead of
one per primitive), to keep the file fast on one core."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets import gan
from jaxnets.core import record_init
from jaxnets.gan.objectives import NOISE_KEY

M = jn.models
CLASSES = 10
GENERATORS = (M.dcgan_generator, M.mlp_generator)


def small(make, num_classes=None, latent_dim=8, base=8):
    """A small model of each family."""
    if make is M.dcgan_generator:
        return make(latent_dim, num_classes=num_classes, base_features=base)
    if make is M.dcgan_discriminator:
        return make(num_classes=num_classes, base_features=base)
    if make is M.mlp_generator:
        return make(latent_dim, hidden=(16, 16), num_classes=num_classes)
    return make(hidden=(16, 16), num_classes=num_classes)


def specs(n, first, num_classes):
    """The input specs: ``first`` alone, or with integer labels ``(n,)``."""
    x = jax.ShapeDtypeStruct((n, *first), jnp.float32)
    return x if num_classes is None else (x, jax.ShapeDtypeStruct((n,), jnp.int32))


def init(model, input_spec, seed=0):
    """``(params, state)`` of ``model``, initialised under jit."""
    return jax.jit(lambda k: model.init(k, input_spec)[1:])(jax.random.key(seed))


def init_gan(g, d, n, latent_dim, num_classes=None, seed=0):
    g_params, g_state = init(g, specs(n, (latent_dim,), num_classes), seed)
    d_params, d_state = init(d, specs(n, (8, 8, 1), num_classes), seed + 1)
    return (
        {"generator": g_params, "discriminator": d_params},
        {"generator": g_state, "discriminator": d_state},
    )


def real_batch(n, seed=3):
    k1, k2 = jax.random.split(jax.random.key(seed))
    images = jax.random.uniform(k1, (n, 8, 8, 1), minval=-1.0, maxval=1.0)
    return images, jax.random.randint(k2, (n,), 0, CLASSES, jnp.int32)


def dcgan_pair(num_classes=None, base=4, latent_dim=8):
    g = M.dcgan_generator(latent_dim, num_classes=num_classes, base_features=base)
    d = M.dcgan_discriminator(num_classes=num_classes, base_features=base)
    return g, d


def nonzero(tree) -> list[bool]:
    return [bool(jnp.any(a != 0)) for a in jax.tree.leaves(tree)]


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("num_classes", [None, CLASSES], ids=["plain", "conditional"])
@pytest.mark.parametrize(
    "make",
    [M.dcgan_generator, M.dcgan_discriminator, M.mlp_generator, M.mlp_discriminator],
    ids=lambda f: f.__name__,
)
def test_output_shapes_and_dtypes(make, num_classes):
    model = small(make, num_classes)
    generator = make in GENERATORS
    spec_in = specs(5, (8,) if generator else (8, 8, 1), num_classes)
    out, params, state = jn.shape_tree(model, spec_in)
    expected = (5, 8, 8, 1) if generator else (5,)
    assert out.shape == expected and out.dtype == jnp.float32
    for train in (False, True):
        y, new_state = jax.eval_shape(
            lambda p, s, x, train=train: model.apply(p, s, x, key=None, train=train),
            params,
            state,
            spec_in,
        )
        assert y.shape == expected and y.dtype == jnp.float32
        assert jax.tree.structure(new_state) == jax.tree.structure(state)


def test_default_models_and_other_image_shapes():
    for make, shape, out in [
        (M.dcgan_generator, (3, 64), (3, 8, 8, 1)),
        (M.dcgan_discriminator, (3, 8, 8, 1), (3,)),
        (M.mlp_generator, (3, 64), (3, 8, 8, 1)),
        (M.mlp_discriminator, (3, 8, 8, 1), (3,)),
        (lambda: M.dcgan_generator(image_shape=(16, 12, 3)), (2, 64), (2, 16, 12, 3)),
        (lambda: M.dcgan_discriminator(image_shape=(16, 12, 3)), (2, 16, 12, 3), (2,)),
        (lambda: M.mlp_generator(image_shape=(5, 7, 2)), (2, 64), (2, 5, 7, 2)),
    ]:
        assert jn.shape_tree(make(), shape)[0].shape == out


def test_default_dcgan_parameter_counts_by_hand():
    # Generator, z of 64 -> 2x2x128 -> 4x4x64 -> 8x8x1, kernels 4x4:
    project = 64 * (2 * 2 * 128)  # Dense without bias (BatchNorm follows): 32,768
    project_bn = 2 * 128  # scale and bias per channel
    up1 = 4 * 4 * 128 * 64  # ConvTranspose without bias: 131,072
    up1_bn = 2 * 64
    to_image = 4 * 4 * 64 * 1 + 1  # the output convolution keeps its bias: 1,025
    g_params = project + project_bn + up1 + up1_bn + to_image
    g_stats = 2 * 128 + 2 * 64  # running mean and variance
    assert g_params == 165_249
    _, params, state = jn.shape_tree(M.dcgan_generator(), (1, 64))
    assert (jn.count_params(params), jn.count_params(state)) == (g_params, g_stats)

    # Discriminator, 8x8x1 -> 4x4x64 -> 2x2x128 -> one logit:
    conv1 = 4 * 4 * 1 * 64 + 64  # with bias, no BatchNorm on the input: 1,088
    conv2 = 4 * 4 * 64 * 128  # 131,072
    conv2_bn = 2 * 128
    logit = 2 * 2 * 128 + 1  # 513
    d_params = conv1 + conv2 + conv2_bn + logit
    assert d_params == 132_929
    _, params, state = jn.shape_tree(M.dcgan_discriminator(), (1, 8, 8, 1))
    assert (jn.count_params(params), jn.count_params(state)) == (d_params, 2 * 128)

    # Conditional: 10 one-hot inputs more to `project`, 10 label planes more to `conv1`.
    _, params, _ = jn.shape_tree(M.dcgan_generator(num_classes=10), specs(1, (64,), 10))
    assert jn.count_params(params) == g_params + 10 * 512
    _, params, _ = jn.shape_tree(M.dcgan_discriminator(num_classes=10), specs(1, (8, 8, 1), 10))
    assert jn.count_params(params) == d_params + 4 * 4 * 10 * 64


def test_default_mlp_parameter_counts_by_hand():
    g = (64 * 256 + 256) + (256 * 256 + 256) + (256 * 64 + 64)
    d = (64 * 256 + 256) + (256 * 256 + 256) + (256 * 1 + 1)
    assert (g, d) == (98_880, 82_689)
    assert jn.count_params(jn.shape_tree(M.mlp_generator(), (1, 64))[1]) == g
    assert jn.count_params(jn.shape_tree(M.mlp_discriminator(), (1, 8, 8, 1))[1]) == d
    _, params, _ = jn.shape_tree(M.mlp_discriminator(num_classes=10), specs(1, (8, 8, 1), 10))
    assert jn.count_params(params) == d + 10 * 256


@pytest.fixture(scope="module")
def default_dcgan():
    """The default generator's and discriminator's (params, state), initialised for real."""
    g = init(M.dcgan_generator(), jax.ShapeDtypeStruct((1, 64), jnp.float32), 1)
    d = init(M.dcgan_discriminator(), jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.float32), 0)
    return g, d


def test_dcgan_initialisation_is_normal_002(default_dcgan):
    (g_params, _), (d_params, _) = default_dcgan
    for kernel in (
        d_params["conv2"]["kernel"],
        g_params["up1"]["kernel"],
        g_params["project"]["kernel"],
    ):
        values = np.asarray(kernel)
        assert abs(values.std() - 0.02) < 0.0005
        assert abs(values.mean()) < 0.0005
    assert np.asarray(d_params["conv1"]["kernel"]).std() == pytest.approx(0.02, rel=0.15)
    assert np.asarray(g_params["to_image"]["kernel"]).std() == pytest.approx(0.02, rel=0.15)
    scale = np.concatenate(
        [np.asarray(d_params["conv2_bn"]["scale"]), np.asarray(g_params["project_bn"]["scale"])]
    )
    assert abs(scale.mean() - 1.0) < 0.006 and abs(scale.std() - 0.02) < 0.005
    assert not np.any(np.asarray(g_params["project_bn"]["bias"]))
    assert not np.any(np.asarray(d_params["conv1"]["bias"]))


def layer_kinds(model, input_spec):
    """``(path, kind)`` of every sub-layer, in the order of the network."""
    with record_init() as records:
        jn.shape_tree(model, input_spec)
    return [(r.path, r.kind) for r in records]


def test_batchnorm_is_absent_at_the_generator_output_and_the_discriminator_input(default_dcgan):
    g_kinds = layer_kinds(M.dcgan_generator(), (1, 64))
    assert g_kinds == [
        ("input", "InputCheck"),
        ("project", "Dense"),
        ("reshape", "Reshape"),
        ("project_bn", "BatchNorm"),
        ("project_relu", "Relu"),
        ("up1", "ConvTranspose"),
        ("up1_bn", "BatchNorm"),
        ("up1_relu", "Relu"),
        ("to_image", "ConvTranspose"),
        ("tanh", "Tanh"),
    ]
    d_kinds = layer_kinds(M.dcgan_discriminator(), (1, 8, 8, 1))
    assert d_kinds == [
        ("input", "InputCheck"),
        ("conv1", "Conv"),
        ("lrelu1", "LeakyRelu"),
        ("conv2", "Conv"),
        ("conv2_bn", "BatchNorm"),
        ("lrelu2", "LeakyRelu"),
        ("flatten", "Flatten"),
        ("logit", "Dense"),
        ("squeeze", "Reshape"),
    ]
    (params, state), (d_params, d_state) = default_dcgan
    assert sorted(state) == ["project_bn", "up1_bn"] and sorted(d_state) == ["conv2_bn"]
    assert sorted(params["to_image"]) == ["bias", "kernel"]  # no BatchNorm to absorb a bias
    assert sorted(d_params["conv1"]) == ["bias", "kernel"]
    assert "bias" not in d_params["conv2"] and "bias" not in params["up1"]  # BatchNorm follows


def test_conditional_generator_draws_different_images_for_different_labels():
    g = M.dcgan_generator(num_classes=CLASSES)
    params, state = init(g, specs(4, (64,), CLASSES))
    z = gan.noise(jax.random.key(5), 4, 64)

    @jax.jit
    def draw(labels):
        return [g.apply(params, state, (z, labels), key=None, train=t)[0] for t in (False, True)]

    zeros = draw(jnp.zeros(4, jnp.int32))
    ones = draw(jnp.ones(4, jnp.int32))
    mixed = draw(jnp.array([0, 1, 0, 1], jnp.int32))
    for a, b in zip(zeros, ones, strict=True):
        assert float(jnp.max(jnp.abs(a - b))) > 1e-3
        assert float(jnp.max(jnp.abs(a))) <= 1.0
    # in inference each example depends on its own label only
    np.testing.assert_allclose(mixed[0][0::2], zeros[0][0::2], atol=1e-6)
    np.testing.assert_allclose(mixed[0][1::2], ones[0][1::2], atol=1e-6)


def test_inputs_are_checked():
    g = small(M.dcgan_generator, CLASSES)
    z = jnp.zeros((3, 8))
    with pytest.raises(jn.LayerTypeError, match="integer class labels"):
        g.init(jax.random.key(0), (z, jnp.zeros(3)))
    with pytest.raises(jn.LayerError, match="expected the pair"):
        g.init(jax.random.key(0), z)
    with pytest.raises(jn.LayerError, match=r"labels of shape \(3,\)"):
        g.init(jax.random.key(0), (z, jnp.zeros(4, jnp.int32)))
    params, state = init(g, specs(3, (8,), CLASSES))
    with pytest.raises(jn.LayerError, match=r"labels must lie in \[0, 10\)"):
        g.apply(params, state, (z, jnp.array([0, 10, 2])), key=None, train=False)
    with pytest.raises(jn.LayerError, match="z of shape"):
        small(M.mlp_generator).init(jax.random.key(0), (3, 9))
    with pytest.raises(jn.LayerError, match="images of shape"):
        small(M.mlp_discriminator).init(jax.random.key(0), (3, 8, 8, 3))
    with pytest.raises(ValueError, match="multiples of 4"):
        M.dcgan_generator(image_shape=(10, 10, 1))
    with pytest.raises(ValueError, match="latent_dim"):
        M.mlp_generator(0)


# --------------------------------------------------------------------------- objectives


@pytest.mark.parametrize("family", ["dcgan_conditional", "mlp_plain"])
def test_objectives_follow_the_contract_and_their_gradients(family):
    """Scalar float32 loss and metrics, new_state of state's structure; the D objective's
    gradient reaches D and is exactly zero for G (stop_gradient), the G objective's reaches
    G; each objective updates the BatchNorm statistics of the network it trains only."""
    if family == "dcgan_conditional":
        num_classes, (g, d) = CLASSES, dcgan_pair(CLASSES)
    else:
        num_classes, g, d = None, small(M.mlp_generator), small(M.mlp_discriminator)
    conditional = num_classes is not None
    params, state = init_gan(g, d, 6, 8, num_classes)
    batch = real_batch(6)
    d_obj = gan.discriminator_objective(g, d, 8, conditional=conditional, label_smoothing=0.1)
    g_obj = gan.generator_objective(g, d, 8, conditional=conditional)
    assert (d_obj.__name__, g_obj.__name__) == ("discriminator_objective", "generator_objective")
    for obj, names, trained in [
        (d_obj, ["d_fake", "d_loss", "d_real"], "discriminator"),
        (g_obj, ["g_loss"], "generator"),
    ]:

        @jax.jit
        def run(params, state, key, obj=obj):
            train = jax.value_and_grad(
                lambda p: obj(p, state, batch, key=key, train=True), has_aux=True
            )(params)
            return train, obj(params, state, batch, key=key, train=False)

        training, evaluation = run(params, state, jax.random.key(7))
        (_, (new_state, _)), grads = training
        for loss, (out_state, metrics) in [training[0], evaluation]:
            assert loss.shape == () and loss.dtype == jnp.float32
            assert jax.tree.structure(out_state) == jax.tree.structure(state)
            assert [a.shape for a in jax.tree.leaves(out_state)] == [
                a.shape for a in jax.tree.leaves(state)
            ]
            assert sorted(metrics) == names
            assert all(m.shape == () and m.dtype == jnp.float32 for m in metrics.values())
            assert float(metrics["d_loss" if obj is d_obj else "g_loss"]) == float(loss)
        jax.tree.map(np.testing.assert_array_equal, evaluation[1][0], state)  # inference

        other = "generator" if trained == "discriminator" else "discriminator"
        assert all(nonzero(grads[trained])), f"{obj.__name__}: a zero gradient for {trained}"
        if obj is d_obj:
            assert not any(nonzero(grads["generator"])), "stop_gradient on the fakes"
        jax.tree.map(np.testing.assert_array_equal, new_state[other], state[other])
        changed = jax.tree.map(
            lambda a, b: bool(jnp.any(a != b)), new_state[trained], state[trained]
        )
        assert all(jax.tree.leaves(changed)), f"{obj.__name__} should update {trained}'s state"
        assert bool(jax.tree.leaves(state[trained])) == (family == "dcgan_conditional")


def test_the_discriminator_state_goes_through_the_real_then_the_fake_call():
    """D is a BatchNorm (momentum 0.9) then a sum: its running mean after the objective is
    ``0.9 * (0.1 * mean(real)) + 0.1 * mean(fake)``, computed here by hand."""
    n, latent_dim = 6, 64
    g = jn.Lambda(lambda z: jnp.tanh(z).reshape(z.shape[0], 8, 8, 1))
    d = jn.serial(("bn", jn.BatchNorm(0.9)), jn.Lambda(lambda x: jnp.sum(x, axis=(1, 2, 3))))
    d_params, d_state = init(d, jax.ShapeDtypeStruct((n, 8, 8, 1), jnp.float32))
    params = {"generator": {}, "discriminator": d_params}
    state = {"generator": {}, "discriminator": d_state}
    images, labels = real_batch(n)
    key = jax.random.key(7)
    obj = gan.discriminator_objective(g, d, latent_dim)
    _, (new_state, _) = obj(params, state, (images, labels), key=key, train=True)
    z = np.asarray(gan.noise(jax.random.fold_in(key, NOISE_KEY), n, latent_dim), np.float64)
    fake = np.tanh(z)
    real = np.asarray(images, np.float64)
    mean = 0.9 * (0.1 * real.mean()) + 0.1 * fake.mean()
    var = 0.9 * (0.9 * 1.0 + 0.1 * real.var()) + 0.1 * fake.var()
    np.testing.assert_allclose(new_state["discriminator"]["bn"]["mean"], [mean], rtol=1e-5)
    np.testing.assert_allclose(new_state["discriminator"]["bn"]["var"], [var], rtol=1e-5)


def _bce(logits, target):
    return np.logaddexp(0.0, logits) - target * logits


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_loss_values_equal_a_numpy_computation():
    """A generator ``tanh(z)`` reshaped to 8x8 and a discriminator ``sum(w * x)``: no
    params, so every logit can be computed by hand from the documented noise."""
    n, latent_dim = 5, 64
    w = np.random.default_rng(0).normal(size=(1, 8, 8, 1)).astype(np.float32)
    g = jn.Lambda(lambda z: jnp.tanh(z).reshape(z.shape[0], 8, 8, 1))
    d = jn.Lambda(lambda x: jnp.sum(x * jnp.asarray(w), axis=(1, 2, 3)))
    params = state = {"generator": {}, "discriminator": {}}
    images, labels = real_batch(n)
    key = jax.random.key(21)
    z = np.asarray(gan.noise(jax.random.fold_in(key, NOISE_KEY), n, latent_dim), np.float64)
    fake_logits = (np.tanh(z).reshape(n, 8, 8, 1) * w).sum(axis=(1, 2, 3))
    real_logits = (np.asarray(images, np.float64) * w).sum(axis=(1, 2, 3))

    results = {}
    for smoothing in (0.0, 0.25):
        obj = gan.discriminator_objective(g, d, latent_dim, label_smoothing=smoothing)
        loss, (_, m) = obj(params, state, (images, labels), key=key, train=True)
        expected = _bce(real_logits, 1.0 - smoothing).mean() + _bce(fake_logits, 0.0).mean()
        np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
        np.testing.assert_allclose(float(m["d_loss"]), float(loss))
        np.testing.assert_allclose(float(m["d_real"]), _sigmoid(real_logits).mean(), rtol=1e-5)
        np.testing.assert_allclose(float(m["d_fake"]), _sigmoid(fake_logits).mean(), rtol=1e-5)
        results[smoothing] = float(loss), m

    # one-sided smoothing changes only the real term: BCE(l, 1 - s) - BCE(l, 1) = s * l
    difference = results[0.25][0] - results[0.0][0]
    np.testing.assert_allclose(difference, 0.25 * real_logits.mean(), rtol=1e-4, atol=1e-6)
    for name in ("d_real", "d_fake"):
        assert float(results[0.25][1][name]) == float(results[0.0][1][name])
    with pytest.raises(ValueError, match="label_smoothing"):
        gan.discriminator_objective(g, d, latent_dim, label_smoothing=1.0)

    loss, (_, m) = gan.generator_objective(g, d, latent_dim)(
        params, state, (images, labels), key=key, train=True
    )
    np.testing.assert_allclose(float(loss), np.logaddexp(0.0, -fake_logits).mean(), rtol=1e-5)
    np.testing.assert_allclose(float(m["g_loss"]), float(loss))


def test_conditional_fakes_are_generated_for_the_batch_labels():
    """G ignores z and paints its label; D's logit is the image's mean minus 4.5 (and
    ignores the labels it is given): so D(fake) = label - 4.5 for each example."""

    def paint(pair):
        z, labels = pair
        return jnp.broadcast_to(labels.astype(z.dtype).reshape(-1, 1, 1, 1), (z.shape[0], 8, 8, 1))

    g = jn.Lambda(paint)
    d = jn.Lambda(lambda pair: jnp.mean(pair[0], axis=(1, 2, 3)) - 4.5)
    params = state = {"generator": {}, "discriminator": {}}
    images, labels = real_batch(6)
    expected = _sigmoid(np.asarray(labels, np.float64) - 4.5).mean()
    obj = gan.discriminator_objective(g, d, 3, conditional=True)
    _, (_, m) = obj(params, state, (images, labels), key=jax.random.key(0), train=True)
    np.testing.assert_allclose(float(m["d_fake"]), expected, rtol=1e-6)
    obj = gan.generator_objective(g, d, 3, conditional=True)
    loss, _ = obj(params, state, (images, labels), key=jax.random.key(0), train=True)
    np.testing.assert_allclose(
        float(loss), np.logaddexp(0.0, -(np.asarray(labels) - 4.5)).mean(), rtol=1e-6
    )


def test_objective_errors_are_clear():
    g = jn.Lambda(lambda z: z.reshape(z.shape[0], 8, 8, 1))
    d = jn.Lambda(lambda x: jnp.sum(x, axis=(1, 2, 3)))
    params = state = {"generator": {}, "discriminator": {}}
    batch = real_batch(2)
    obj = gan.generator_objective(g, d, 64)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        obj(params, state, batch, key=None, train=True)
    with pytest.raises(ValueError, match="'generator' and 'discriminator'"):
        obj({"generator": {}}, state, batch, key=jax.random.key(0), train=True)
    with pytest.raises(TypeError, match=r"expected a batch \(images, labels\)"):
        obj(params, state, batch[0], key=jax.random.key(0), train=True)
    wide = jn.Lambda(lambda x: x.reshape(x.shape[0], -1))
    with pytest.raises(ValueError, match="one logit per example"):
        gan.generator_objective(g, wide, 64)(
            params, state, batch, key=jax.random.key(0), train=True
        )


def test_sample_is_the_generator_on_the_noise_of_the_key():
    g = small(M.mlp_generator, CLASSES)
    g_params, g_state = init(g, specs(2, (8,), CLASSES))
    params = {"generator": g_params, "discriminator": {}}
    state = {"generator": g_state, "discriminator": {}}
    key = jax.random.key(9)
    labels = jnp.arange(6, dtype=jnp.int32)

    @jax.jit
    def run():
        z = gan.noise(key, 6, 8)
        expected, _ = g.apply(
            params["generator"], state["generator"], (z, labels), key=None, train=False
        )
        return (
            expected,
            gan.sample(g, params, state, key, 6, 8, labels=labels),
            gan.sample(g, params["generator"], state["generator"], key, 6, 8, labels=labels),
            gan.sample(g, params, state, key, 6, 8, labels=3),
            gan.sample(g, params, state, key, 6, 8, labels=jnp.full(6, 3)),
        )

    expected, images, own, threes, threes_too = run()
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(own, images)
    np.testing.assert_array_equal(threes, threes_too)
    assert images.shape == (6, 8, 8, 1) and float(jnp.max(jnp.abs(images))) <= 1.0
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        gan.sample(g, params, state, key, 6, 8, labels=jnp.arange(5))
    z = gan.noise(key, 6, 8)
    assert z.shape == (6, 8) and z.dtype == jnp.float32
    np.testing.assert_array_equal(z, gan.noise(key, 6, 8))


# --------------------------------------------------------------------------- training


def test_a_short_dcgan_run_on_the_digits_learns():
    """200 alternating steps (D, then G against the updated D) of Adam(2e-4, b1=0.5),
    batch 64: D tells real from fake and G's mean image moves toward the data's."""
    latent_dim, steps, n = 16, 200, 64
    train, _ = jn.data.load_digits()
    data = jnp.asarray(train.inputs) * 2.0 - 1.0
    labels = jnp.asarray(train.labels)
    g, d = dcgan_pair(base=16, latent_dim=latent_dim)
    params, state = init_gan(g, d, n, latent_dim)
    optimizer = optax.adam(2e-4, b1=0.5)
    opt_state = {part: optimizer.init(p) for part, p in params.items()}
    updates = [
        ("discriminator", gan.discriminator_objective(g, d, latent_dim)),
        ("generator", gan.generator_objective(g, d, latent_dim)),
    ]

    def step(carry, i):
        params, state, opt_state = carry
        key = jax.random.fold_in(jax.random.key(1), i)
        index = jax.random.choice(jax.random.fold_in(key, 0), data.shape[0], (n,), replace=False)
        batch = (data[index], labels[index])
        metrics = {}
        for j, (part, objective) in enumerate(updates):

            def loss(p, part=part, objective=objective, j=j, params=params, state=state):
                return objective(
                    {**params, part: p},
                    state,
                    batch,
                    key=jax.random.fold_in(key, j + 1),
                    train=True,
                )

            (_, (state, m)), grads = jax.value_and_grad(loss, has_aux=True)(params[part])
            change, new_opt = optimizer.update(grads, opt_state[part], params[part])
            params = {**params, part: optax.apply_updates(params[part], change)}
            opt_state = {**opt_state, part: new_opt}
            metrics.update(m)
        return (params, state, opt_state), metrics

    @jax.jit
    def distance_to_data(params, state):
        samples = gan.sample(g, params, state, jax.random.key(99), 256, latent_dim)
        return jnp.sqrt(jnp.mean((samples.mean(0) - data.mean(0)) ** 2))

    before = float(distance_to_data(params, state))
    run = jax.jit(lambda carry: jax.lax.scan(step, carry, jnp.arange(steps)))
    (params, state, _), history = run((params, state, opt_state))
    after = float(distance_to_data(params, state))
    d_real = float(jnp.mean(history["d_real"][-20:]))
    d_fake = float(jnp.mean(history["d_fake"][-20:]))
    assert np.all(np.isfinite(np.asarray(history["g_loss"])))
    assert d_real > 0.6 and d_fake < 0.4, (d_real, d_fake)
    assert after < 0.8 * before, (before, after)
