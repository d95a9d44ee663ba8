"""The model zoo: exact parameter counts, output shapes, names, input errors, and a
real training step for the small models. Big models are only traced (jax.eval_shape)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets.core import record_init
from jaxnets.models.cifar_resnet import pad_shortcut

M = jn.models
IMAGENET = (1, 224, 224, 3)
INCEPTION = (1, 299, 299, 3)


def counts(model, shape):
    out, params, state = jn.shape_tree(model, shape)
    return out.shape, jn.count_params(params), jn.count_params(state)


# (id, constructor, input, trainable params, BatchNorm statistics) from ../shared/ANCHORS.md,
# Keras applications and torchvision.
ANCHORS = [
    ("resnet50_keras", M.resnet50, IMAGENET, 25_583_592, 53_120),
    ("vgg16", M.vgg16, IMAGENET, 138_357_544, 0),
    ("inception_v3", M.inception_v3, INCEPTION, 23_817_352, 34_432),
    ("xception", M.xception, INCEPTION, 22_855_952, 54_528),
    ("resnet18_torchvision", M.resnet18, IMAGENET, 11_689_512, 9_600),
    (
        "resnet50_torchvision",
        lambda: M.resnet50(convention="torchvision"),
        IMAGENET,
        25_557_032,
        53_120,
    ),
    ("resnet34_torchvision", M.resnet34, IMAGENET, 21_797_672, 17_024),
    ("resnet101_keras", M.resnet101, IMAGENET, 44_601_832, 105_344),
    ("resnet152_keras", M.resnet152, IMAGENET, 60_268_520, 151_424),
    ("vgg11", M.vgg11, IMAGENET, 132_863_336, 0),
    ("vgg13", M.vgg13, IMAGENET, 133_047_848, 0),
    ("vgg19", M.vgg19, IMAGENET, 143_667_240, 0),
    ("vgg16_bn_torchvision", lambda: M.vgg16(batch_norm=True), IMAGENET, 138_365_992, 8_448),
    ("lenet5", M.lenet5, (1, 28, 28, 1), 61_706, 0),
]


@pytest.mark.parametrize(
    ("make", "shape", "trainable", "stats"),
    [a[1:] for a in ANCHORS],
    ids=[a[0] for a in ANCHORS],
)
def test_parameter_counts_equal_the_references(make, shape, trainable, stats):
    out_shape, n_params, n_state = counts(make(), shape)
    assert (n_params, n_state) == (trainable, stats)
    assert out_shape == (shape[0], 10 if make is M.lenet5 else 1000)


def test_keras_totals_include_the_batchnorm_statistics():
    for make, shape, total in [
        (M.resnet50, IMAGENET, 25_636_712),
        (M.inception_v3, INCEPTION, 23_851_784),
        (M.xception, INCEPTION, 22_910_480),
    ]:
        _, n_params, n_state = counts(make(), shape)
        assert n_params + n_state == total


# He et al. 2016, Table 6 (millions of parameters) and the exact figures of this layout.
CIFAR = [
    (20, 0.27e6, 269_722),
    (32, 0.46e6, 464_154),
    (44, 0.66e6, 658_586),
    (56, 0.85e6, 853_018),
    (110, 1.7e6, 1_727_962),
]


@pytest.mark.parametrize(("depth", "paper", "exact"), CIFAR, ids=[str(c[0]) for c in CIFAR])
def test_cifar_resnets_match_the_paper(depth, paper, exact):
    make = getattr(M, f"resnet{depth}")
    out_shape, n_params, n_state = counts(make(), (2, 32, 32, 3))
    assert out_shape == (2, 10)
    assert n_params == exact
    assert float(f"{n_params:.2g}") == paper  # the paper's figure, to its two digits
    if depth in (20, 56):
        assert abs(n_params - paper) / paper < 0.01
    # two statistics per channel of the stem BatchNorm and of 2n BatchNorms per stage
    assert n_state == 2 * 16 + 2 * 2 * (depth - 2) // 6 * (16 + 32 + 64)
    assert counts(M.cifar_resnet(depth), (2, 32, 32, 3)) == (out_shape, n_params, n_state)


# (id, constructor, input, feature map of include_top=False)
FEATURES = [
    ("lenet5", M.lenet5, (2, 28, 28, 1), (2, 5, 5, 16)),
    ("vgg16", M.vgg16, IMAGENET, (1, 7, 7, 512)),
    ("resnet18", M.resnet18, IMAGENET, (1, 7, 7, 512)),
    ("resnet50", M.resnet50, IMAGENET, (1, 7, 7, 2048)),
    ("resnet20", M.resnet20, (2, 32, 32, 3), (2, 8, 8, 64)),
    ("inception_v3", M.inception_v3, INCEPTION, (1, 8, 8, 2048)),
    ("xception", M.xception, INCEPTION, (1, 10, 10, 2048)),
]


@pytest.mark.parametrize(
    ("make", "shape", "features"), [f[1:] for f in FEATURES], ids=[f[0] for f in FEATURES]
)
def test_include_top_and_pooling(make, shape, features):
    top = counts(make(7), shape)
    assert top[0] == (shape[0], 7)
    bare = counts(make(include_top=False), shape)
    assert bare[0] == features
    assert bare[2] == top[2]
    for pooling in ("avg", "max"):
        pooled = counts(make(include_top=False, pooling=pooling), shape)
        assert pooled[0] == (shape[0], features[-1])
        assert pooled[1:] == bare[1:]
    with pytest.raises(ValueError, match="pooling must be None, 'avg' or 'max'"):
        make(include_top=False, pooling="mean")


def test_include_top_false_drops_only_the_classifier():
    _, top, _ = jn.shape_tree(M.resnet50(), IMAGENET)
    _, bare, _ = jn.shape_tree(M.resnet50(include_top=False), IMAGENET)
    assert set(top) - set(bare) == {"logits"}
    assert jn.count_params(top) - jn.count_params(bare) == 2048 * 1000 + 1000


def test_resnet_names_and_conventions():
    _, keras, keras_state = jn.shape_tree(M.resnet50(), IMAGENET)
    _, torch, _ = jn.shape_tree(M.resnet50(convention="torchvision"), IMAGENET)
    assert sorted(keras) == ["logits", "stage2", "stage3", "stage4", "stage5", "stem"]
    block = keras["stage2"]["block1"]
    assert block["main"]["conv1"]["kernel"].shape == (1, 1, 64, 64)
    assert block["main"]["conv2"]["kernel"].shape == (3, 3, 64, 64)
    assert block["main"]["conv3"]["kernel"].shape == (1, 1, 64, 256)
    assert block["shortcut"]["conv"]["kernel"].shape == (1, 1, 64, 256)
    assert set(block["main"]["bn1"]) == {"scale", "bias"}
    assert set(keras_state["stage2"]["block1"]["main"]["bn1"]) == {"mean", "var"}
    assert "shortcut" not in keras["stage2"]["block2"]
    assert keras["stem"]["conv"]["kernel"].shape == (7, 7, 3, 64)
    assert keras["logits"]["kernel"].shape == (2048, 1000)
    # Keras puts a bias on every convolution, torchvision on none.
    assert set(keras["stage3"]["block1"]["main"]["conv2"]) == {"kernel", "bias"}
    assert set(torch["stage3"]["block1"]["main"]["conv2"]) == {"kernel"}
    assert set(torch["stem"]["conv"]) == {"kernel"}


def _output_shapes(model, shape):
    with record_init() as records:
        jn.shape_tree(model, shape)
    return {r.path: r.output_spec.shape for r in records if r is not None}


def test_bottleneck_stride_is_on_the_1x1_for_keras_and_the_3x3_for_torchvision():
    keras = _output_shapes(M.resnet50(), IMAGENET)
    torch = _output_shapes(M.resnet50(convention="torchvision"), IMAGENET)
    assert keras["stage3/block1/main/conv1"] == (1, 28, 28, 128)
    assert torch["stage3/block1/main/conv1"] == (1, 56, 56, 128)
    assert keras["stage3/block1/main/conv2"] == torch["stage3/block1/main/conv2"]
    for shapes in (keras, torch):
        assert shapes["stem/pool"] == (1, 56, 56, 64)
        assert shapes["stage5"] == (1, 7, 7, 2048)


def test_inception_and_xception_layouts():
    _, inc, inc_state = jn.shape_tree(M.inception_v3(), INCEPTION)
    assert sorted(inc) == sorted(["stem", "logits", *(f"mixed{i}" for i in range(11))])
    # Keras's conv2d_bn: no conv bias, BatchNorm with an offset but no scale.
    assert set(inc["mixed0"]["branch5x5"]["conv2"]) == {"kernel"}
    assert inc["mixed0"]["branch5x5"]["conv2"]["kernel"].shape == (5, 5, 48, 64)
    assert set(inc["mixed0"]["branch5x5"]["bn2"]) == {"bias"}
    assert set(inc_state["mixed0"]["branch5x5"]["bn2"]) == {"mean", "var"}
    assert inc["mixed9"]["branch3x3"]["split"]["1x3"]["conv"]["kernel"].shape == (1, 3, 384, 384)
    shapes = _output_shapes(M.inception_v3(), INCEPTION)
    for name, shape in [("mixed2", (35, 288)), ("mixed7", (17, 768)), ("mixed10", (8, 2048))]:
        assert shapes[name] == (1, shape[0], shape[0], shape[1])

    _, xc, _ = jn.shape_tree(M.xception(), INCEPTION)
    assert set(xc["block2"]["main"]["sepconv1"]) == {"depthwise_kernel", "pointwise_kernel"}
    assert xc["block2"]["shortcut"]["conv"]["kernel"].shape == (1, 1, 64, 128)
    assert "shortcut" not in xc["block7"]
    assert xc["block14"]["sepconv2"]["pointwise_kernel"].shape == (1, 1, 1536, 2048)


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (M.resnet50, IMAGENET),
        (lambda: M.resnet34(convention="keras"), (2, 64, 64, 3)),
        (M.inception_v3, INCEPTION),
        (M.xception, INCEPTION),
        (lambda: M.vgg11(batch_norm=True, dropout=0.5), (2, 32, 32, 3)),
    ],
    ids=["resnet50", "resnet34_keras", "inception_v3", "xception", "vgg11_bn"],
)
def test_apply_traces_to_the_declared_output(make, shape):
    """The whole forward pass, in both modes, abstractly: no FLOPs, no weights."""
    model = make()
    out, params, state = jn.shape_tree(model, shape)
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    for train in (False, True):
        y, new_state = jax.eval_shape(
            lambda p, s, x, train=train: model.apply(p, s, x, key=jax.random.key(0), train=train),
            params,
            state,
            x,
        )
        assert y.shape == out.shape and y.dtype == jnp.float32
        assert jax.tree.structure(new_state) == jax.tree.structure(state)


@pytest.mark.parametrize(
    ("make", "shape"), [(M.resnet50, IMAGENET), (M.xception, (2, 71, 71, 3))], ids=["r50", "xc"]
)
def test_bfloat16_inputs_give_bfloat16_outputs(make, shape):
    model = make()
    _, params, state = jn.shape_tree(model, shape)
    x = jax.ShapeDtypeStruct(shape, jnp.bfloat16)
    y, _ = jax.eval_shape(lambda p, s, x: model.apply(p, s, x, train=True), params, state, x)
    assert y.dtype == jnp.bfloat16 and y.shape == (shape[0], 1000)


@pytest.mark.parametrize(
    ("make", "minimum", "channels"),
    [
        (M.resnet50, 32, 3),
        (M.vgg16, 32, 3),
        (M.inception_v3, 75, 3),
        (M.xception, 71, 3),
        (M.lenet5, 12, 1),
    ],
    ids=["resnet50", "vgg16", "inception_v3", "xception", "lenet5"],
)
def test_smallest_input_works_and_smaller_is_a_clear_error(make, minimum, channels):
    out, _, _ = jn.shape_tree(make(), (1, minimum, minimum, channels))
    assert out.shape[0] == 1
    small = (1, minimum - 1, minimum + 5, channels)
    with pytest.raises(jn.LayerError, match=f"needs at least {minimum}x{minimum}"):
        jn.init_model(make(), jax.random.key(0), small)


def test_bad_arguments_and_inputs_are_clear_errors():
    with pytest.raises(jn.LayerError, match=r"expects images .* rank 4"):
        jn.shape_tree(M.resnet18(), (224, 224, 3))
    with pytest.raises(ValueError, match="depth must be one of"):
        M.resnet(42)
    with pytest.raises(ValueError, match="convention must be one of"):
        M.resnet50(convention="caffe")
    with pytest.raises(ValueError, match="depth must be one of"):
        M.vgg(17)
    with pytest.raises(ValueError, match="6n"):
        M.cifar_resnet(21)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        M.resnet20(0)


def test_pad_shortcut_subsamples_and_appends_zero_channels():
    x = jnp.arange(2 * 5 * 4 * 3, dtype=jnp.float32).reshape(2, 5, 4, 3)
    y, _ = pad_shortcut(8).apply({}, {}, x, train=False)
    assert y.shape == (2, 3, 2, 8)
    np.testing.assert_array_equal(y[..., :3], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 3:], 0.0)


@pytest.mark.parametrize(
    ("make", "shape"),
    [(M.lenet5, (2, 28, 28, 1)), (M.resnet20, (2, 32, 32, 3))],
    ids=["lenet5", "resnet20"],
)
def test_small_models_train_for_real(make, shape):
    """One jitted forward + backward + update at batch 2; the loss goes down."""
    model = make()
    _, params, state = model.init(jax.random.key(0), shape)
    x = jax.random.normal(jax.random.key(1), shape)
    labels = jnp.array([3, 7])
    opt = optax.sgd(0.05)

    def loss_fn(p, s):
        logits, new_s = model.apply(p, s, x, key=jax.random.key(2), train=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), new_s

    @jax.jit
    def step(p, s, o):
        (loss, new_s), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, s)
        updates, o = opt.update(grads, o, p)
        return optax.apply_updates(p, updates), new_s, o, loss, grads

    opt_state = opt.init(params)
    losses = []
    for _ in range(3):
        params, new_state, opt_state, loss, grads = step(params, state, opt_state)
        losses.append(float(loss))
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    if state:  # BatchNorm statistics move in training mode
        assert not np.allclose(new_state["stem"]["bn"]["mean"], state["stem"]["bn"]["mean"])
    y, _ = model.apply(params, new_state, x, train=False)
    assert y.shape == (2, 10)
