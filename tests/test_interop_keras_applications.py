"""keras.applications weights into the zoo: outputs equal Keras's, and the errors.

Each Keras model is built once per module with random weights (``weights=None``, nothing
downloaded) and random BatchNorm statistics, then saved in the Keras 2 layout (``.h5``,
written with h5py as Keras 2's ``save_weights`` wrote the distributed files) and the Keras 3
layout (``.weights.h5``). Sizes, kept small for speed: ResNet50 with its top at 32x32
and 10 classes (logits: ``classifier_activation=None``); VGG16 at 32x32, InceptionV3 at
75x75 and Xception at 71x71 (the smallest sizes Keras accepts), and VGG19 at 32x32,
with ``include_top=False``. Batch of 2 uniform random images; outputs equal to 1e-4 relative
(to the largest output).
"""

import io
import json
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn

keras = pytest.importorskip("keras", reason="the Keras interop tests need keras 3 (test extra)")
h5py = pytest.importorskip("h5py", reason="the Keras interop tests need h5py (test extra)")

from keras.src.backend.jax import random as keras_jax_random  # noqa: E402

from jaxnets.interop.keras import decode_predictions, load_weights, preprocess_input  # noqa: E402
from jaxnets.interop.keras.h5 import read_layer_weights  # noqa: E402

CASES = {
    "vgg16": (keras.applications.VGG16, jn.models.vgg16, 32),
    "vgg19": (keras.applications.VGG19, jn.models.vgg19, 32),
    "inception_v3": (keras.applications.InceptionV3, jn.models.inception_v3, 75),
    "xception": (keras.applications.Xception, jn.models.xception, 71),
    "resnet50_top": (keras.applications.ResNet50, jn.models.resnet50, 32),
}


def _numpy_uniform(rng):
    """Keras's jax ``random.uniform`` drawn by NumPy instead: the same Glorot-uniform
    weights in distribution, without one XLA compilation per kernel shape (which
    dominates building these models with keras on CPU)."""

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        return jnp.asarray(rng.uniform(minval, maxval, shape), dtype or "float32")

    return uniform


def _randomise_batch_norm(model, rng):
    """Moving statistics (and offsets) away from their initial values, so state matters."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0.0, 0.2, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
            if layer.center:
                layer.beta.assign(rng.normal(0.0, 0.2, n).astype("float32"))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))


def _write_keras2_h5(model, path):
    """The Keras 2 layout of ``model.save_weights("x.h5")`` (as the distributed files):
    ``layer_names`` at the top, one group per layer listing its ``weight_names``."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode("utf8") for layer in model.layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.15.0"
        for layer in model.layers:
            group = f.create_group(layer.name)
            weights = layer.trainable_weights + layer.non_trainable_weights
            names = [f"{layer.name}/{w.name}:0" for w in weights]
            group.attrs["weight_names"] = [n.encode("utf8") for n in names]
            for name, w in zip(names, weights, strict=True):
                group[name] = np.asarray(w.value)


def _save_both(model, folder, stem):
    """The Keras 2 ``.h5`` and Keras 3 ``.weights.h5`` files of ``model``."""
    legacy = folder / f"{stem}.h5"
    _write_keras2_h5(model, legacy)
    modern = folder / f"{stem}.weights.h5"
    with warnings.catch_warnings():
        # keras 3.15 converts its jax Variables with np.array(x), which NumPy 2 warns about.
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        model.save_weights(modern)
    return {"h5": legacy, "weights.h5": modern}


def _keras_output(model, x):
    with jax.numpy_rank_promotion("allow"):
        return np.asarray(model.predict_on_batch(x))


class Built(NamedTuple):
    files: dict  # layout ("h5", "weights.h5") -> path
    x: np.ndarray  # the input images
    expected: np.ndarray  # Keras's output
    zoo: object  # the jaxnets model
    size: int  # the input's height and width
    forward: object  # the jitted zoo.apply(params, state, x, train=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """name -> :class:`Built`, each model built on first use."""
    cache = {}

    def get(name):
        if name not in cache:
            keras_fn, zoo_fn, size = CASES[name]
            rng = np.random.default_rng(len(cache))
            top = name == "resnet50_top"
            kwargs = {"classes": 10, "classifier_activation": None} if top else {}
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(keras_jax_random, "uniform", _numpy_uniform(rng))
                model = keras_fn(
                    weights=None, include_top=top, input_shape=(size, size, 3), **kwargs
                )
            _randomise_batch_norm(model, rng)
            files = _save_both(model, tmp_path_factory.mktemp(name), name)
            x = rng.uniform(-1.0, 1.0, (2, size, size, 3)).astype("float32")
            zoo = zoo_fn(10) if top else zoo_fn(include_top=False)
            forward = jax.jit(lambda p, s, x, zoo=zoo: zoo.apply(p, s, x, train=False))
            cache[name] = Built(files, x, _keras_output(model, x), zoo, size, forward)
        return cache[name]

    return get


@pytest.mark.parametrize("layout", ["h5", "weights.h5"])
@pytest.mark.parametrize("name", ["resnet50_top", "vgg16", "vgg19", "inception_v3", "xception"])
def test_outputs_equal_keras(built, name, layout):
    b = built(name)
    params, state = load_weights(b.zoo, b.files[layout], (1, b.size, b.size, 3))
    y, _ = b.forward(params, state, b.x)
    expected = b.expected
    assert y.shape == expected.shape
    scale = np.abs(expected).max()
    assert np.std(expected) > 0.01 * scale  # the outputs vary: not two constants compared
    np.testing.assert_allclose(np.asarray(y) / scale, expected / scale, rtol=0, atol=1e-4)


def test_whole_model_h5_layout(built, tmp_path):
    """The ``model_weights`` group of a whole-model ``.h5`` is read like a weights file."""
    b = built("vgg16")
    path = tmp_path / "whole.h5"
    with h5py.File(b.files["h5"]) as src, h5py.File(path, "w") as dst:
        group = dst.create_group("model_weights")
        for key, value in src.attrs.items():
            group.attrs[key] = value
        for key in src:
            src.copy(src[key], group, key)
    params, state = load_weights(b.zoo, path, (1, b.size, b.size, 3))
    y, _ = b.forward(params, state, b.x)
    np.testing.assert_allclose(np.asarray(y), b.expected, rtol=0, atol=1e-4 * b.expected.max())


def _copy(src, dst):
    dst.write_bytes(src.read_bytes())
    return dst


def test_wrong_shape_names_the_weight_and_both_shapes(built, tmp_path):
    vgg = built("vgg16")
    path = _copy(vgg.files["h5"], tmp_path / "bad.h5")
    with h5py.File(path, "r+") as f:
        name = next(n for n in f["block2_conv1"].attrs["weight_names"])
        del f["block2_conv1"][name]
        f["block2_conv1"][name] = np.zeros((3, 3, 64, 99), np.float32)
    with pytest.raises(
        ValueError,
        match=r"'block2_conv1' weight 0 \(kernel\).*"
        r"\(3, 3, 64, 99\).*'block2/conv1/kernel' needs \(3, 3, 64, 128\)",
    ):
        load_weights(vgg.zoo, path, (1, 32, 32, 3))


def test_missing_layer_is_named(built, tmp_path):
    vgg = built("vgg16")
    path = _copy(vgg.files["h5"], tmp_path / "missing.h5")
    with h5py.File(path, "r+") as f:
        names = [n for n in f.attrs["layer_names"] if n != "block5_conv3"]
        f.attrs["layer_names"] = names
        del f["block5_conv3"]
    with pytest.raises(ValueError, match=r"has no layer 'block5_conv3' .*'block5/conv3'"):
        load_weights(vgg.zoo, path, (1, 32, 32, 3))


def test_wrong_weight_count_is_named(built, tmp_path):
    top = built("resnet50_top")
    path = _copy(top.files["h5"], tmp_path / "short.h5")
    with h5py.File(path, "r+") as f:
        names = list(f["conv1_bn"].attrs["weight_names"])
        f["conv1_bn"].attrs["weight_names"] = names[:3]
    with pytest.raises(
        ValueError,
        match=r"'conv1_bn' in .* holds 3 weights, the model's 'stem/bn' needs 4 "
        r"\(gamma, beta, moving_mean, moving_variance\)",
    ):
        load_weights(top.zoo, path, (1, 32, 32, 3))


def test_extra_layer_is_named(built):
    path = built("resnet50_top").files["h5"]
    with pytest.raises(ValueError, match=r"'predictions', which the model lacks.*include_top"):
        load_weights(jn.models.resnet50(include_top=False), path, (1, 32, 32, 3))


def test_notop_file_into_a_model_with_top(built):
    path = built("vgg16").files["weights.h5"]
    with pytest.raises(ValueError, match=r"no layer 'fc1' .*'fc1'.*_notop"):
        load_weights(jn.models.vgg16(10), path, (1, 32, 32, 3))


def test_truncated_file_is_named(built, tmp_path):
    vgg = built("vgg16")
    data = vgg.files["weights.h5"].read_bytes()
    path = tmp_path / "cut.weights.h5"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"'.*cut\.weights\.h5' is truncated"):
        load_weights(vgg.zoo, path, (1, 32, 32, 3))


def test_not_hdf5_and_not_keras(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not weights")
    model = jn.models.vgg16(include_top=False)
    with pytest.raises(ValueError, match=r"'.*notes\.h5' is not an HDF5 file"):
        load_weights(model, text, (1, 32, 32, 3))
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"'.*other\.h5' is an HDF5 file but holds no Keras"):
        load_weights(model, other, (1, 32, 32, 3))


def test_unsupported_models(built):
    path = built("vgg16").files["h5"]
    with pytest.raises(ValueError, match="not one of the zoo's resnet50"):
        load_weights(jn.models.mlp((4,), 2), path, (1, 8))
    with pytest.raises(ValueError, match="torchvision convention"):
        load_weights(jn.models.resnet18(), path, (1, 32, 32, 3))
    with pytest.raises(ValueError, match="no VGG with BatchNorm"):
        load_weights(jn.models.vgg16(batch_norm=True), path, (1, 32, 32, 3))


@pytest.mark.parametrize(
    ("module", "mode"),
    [
        ("resnet50", "resnet50"),
        ("vgg16", "caffe"),
        ("inception_v3", "inception_v3"),
        ("xception", "tf"),
        ("densenet", "torch"),
    ],
)
def test_preprocess_matches_keras(module, mode):
    images = np.random.default_rng(0).uniform(0, 255, (2, 5, 4, 3)).astype("float32")
    with jax.numpy_rank_promotion("allow"):
        expected = getattr(keras.applications, module).preprocess_input(images.copy())
    np.testing.assert_allclose(preprocess_input(images, mode), expected, rtol=1e-6, atol=1e-5)


def test_preprocess_errors_and_ints():
    ints = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
    assert preprocess_input(ints, "tf").dtype == np.float32
    with pytest.raises(ValueError, match=r"mode must be one of 'caffe', 'tf', 'torch'"):
        preprocess_input(ints, "yolo")
    with pytest.raises(ValueError, match=r"3 channels last, got shape \(1, 3, 2, 2\)"):
        preprocess_input(ints.reshape(1, 3, 2, 2), "caffe")


def test_decode_predictions(tmp_path):
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    path = tmp_path / "imagenet_class_index.json"
    path.write_text(json.dumps(index))
    preds = np.random.default_rng(1).uniform(size=(3, 1000))
    decoded = decode_predictions(preds, path, top=5)
    for row, result in zip(preds, decoded, strict=True):
        best = np.argsort(-row)[:5]
        assert [r[0] for r in result] == [f"n{i:08d}" for i in best]
        assert [r[1] for r in result] == [f"class_{i}" for i in best]
        np.testing.assert_allclose([r[2] for r in result], row[best])
    with pytest.raises(ValueError, match=r"shape \(batch, 1000\).*got shape \(3, 10\)"):
        decode_predictions(preds[:, :10], path)
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2")
    with pytest.raises(ValueError, match=r"'.*broken\.json' is not a class index"):
        decode_predictions(preds, broken)


def test_keras3_file_without_layer_names(built, tmp_path):
    """An older Keras 3 file, whose ``vars`` groups carry no names, is refused clearly."""
    vgg = built("vgg16")
    path = _copy(vgg.files["weights.h5"], tmp_path / "old.weights.h5")
    with h5py.File(path, "r+") as f:
        f.visititems(lambda _, obj: obj.attrs.pop("name", None))
    with pytest.raises(ValueError, match=r"'.*old\.weights\.h5': the vars of 'conv2d' carry no"):
        load_weights(vgg.zoo, path, (1, 32, 32, 3))


def test_reader_chunked_names_nested_paths_and_file_objects(tmp_path):
    """``read_layer_weights``: Keras 2's long attributes split into ``layer_names0``,
    ``layer_names1``...; Keras 3's nested paths; an open file instead of a path."""
    legacy = tmp_path / "chunked.h5"
    with h5py.File(legacy, "w") as f:
        f.attrs["layer_names0"] = [b"dense"]
        f.attrs["layer_names1"] = [b"flatten"]
        f["dense/dense/kernel:0"] = np.ones((3, 2), np.float32)
        f["dense/dense/bias:0"] = np.zeros(2, np.float32)
        f["dense"].attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        f.create_group("flatten").attrs["weight_names"] = np.array([], "S1")
    layers = read_layer_weights(legacy)
    assert list(layers) == ["dense", "flatten"]
    assert [w.shape for w in layers["dense"]] == [(3, 2), (2,)] and layers["flatten"] == []
    with open(legacy, "rb") as f:
        assert list(read_layer_weights(io.BytesIO(f.read()))) == ["dense", "flatten"]

    inputs = keras.Input((4,))
    inner = keras.Sequential([keras.layers.Dense(3, name="inner_dense")], name="inner")
    model = keras.Model(inputs, inner(keras.layers.Dense(5, name="outer")(inputs)))
    path = tmp_path / "nested.weights.h5"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        model.save_weights(path)
    by_path = read_layer_weights(path)
    assert [w.shape for w in by_path["sequential/layers/dense"]] == [(5, 3), (3,)]
    assert [w.shape for w in by_path["dense"]] == [(4, 5), (5,)]
    by_name = read_layer_weights(path, keys="name")
    assert [w.shape for w in by_name["inner_dense"]] == [(5, 3), (3,)]
    np.testing.assert_array_equal(by_name["outer"][0], np.asarray(model.layers[1].kernel.value))
