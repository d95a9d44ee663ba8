"""Bad inputs to activations, plots and the GAN helpers: areas "activations", "plots", "gan"."""

from __future__ import annotations

import os
import tempfile

import jax
import numpy as np
from bad_input import Bad

import jaxnets as jn
from jaxnets import gan, plots
from jaxnets.gan import judge, scores

_PNG = os.path.join(tempfile.gettempdir(), "jaxnets_bad_inputs", "never.png")
_K = jax.random.key(0)
_G = jn.models.mlp_generator(4, hidden=(8,))
_D = jn.models.mlp_discriminator(hidden=(8,))
_DATA = jn.data.ArrayDataset(np.zeros((8, 8, 8, 1), np.float32), np.zeros(8, np.int32))
_REAL = jn.data.ArrayDataset(np.zeros((4, 2, 2, 1), np.float32), np.zeros(4, np.int32))


def _case(area, name, call, raises, *mentions):
    return Bad(area, name, call, raises, tuple(mentions))


def _act(name, call, raises, *mentions):
    return _case("activations", name, call, raises, *mentions)


def _plot(name, call, raises, *mentions):
    return _case("plots", name, call, raises, *mentions)


def _gan(name, call, raises, *mentions):
    return _case("gan", name, call, raises, *mentions)


def _train_gan(**kw):
    return gan.train_gan(
        _G, _D, 4, _DATA, **{"epochs": 1, "batch_size": 4, "progress": False, **kw}
    )


def _judge(**kw):
    trunk = jn.serial(jn.Flatten(), jn.Dense(3))
    return judge.SampleJudge(trunk, jn.Dense(2), {}, {}, _REAL, _REAL, **kw)


T, V = TypeError, ValueError
_IMAGES = np.zeros((4, 8, 8, 1))

CASES = [
    # activations
    _act("Activation misspelt", lambda: jn.Activation("rleu"), V, "Activation", "'rleu'", "'relu'"),
    _act("Activation an int", lambda: jn.Activation(5), T, "Activation", "activation", "5"),
    _act(
        "Activation unknown keyword",
        lambda: jn.Activation("relu", alpha=0.2),
        T,
        "Activation",
        "alpha",
        "relu",
    ),
    _act(
        "LeakyRelu misspelt keyword",
        lambda: jn.LeakyRelu(slope=0.2),
        T,
        "LeakyRelu",
        "slope",
        "negative_slope",
    ),
    _act("get a capitalised name", lambda: jn.activations.get("Relu"), V, "'Relu'", "'relu'"),
    _act("Relu name an int", lambda: jn.Relu(name=5), T, "Relu: name", "5"),
    # plots
    _plot(
        "confusion_matrix label >= num_classes",
        lambda: plots.confusion_matrix([0, 5], [0, 1], num_classes=3),
        V,
        "confusion_matrix: labels",
        "5",
        "[0, 3)",
    ),
    _plot(
        "confusion_matrix negative label",
        lambda: plots.confusion_matrix([-1, 0], [0, 0]),
        V,
        "confusion_matrix: labels",
        "-1",
    ),
    _plot(
        "confusion_matrix prediction >= num_classes",
        lambda: plots.confusion_matrix([0, 1], [0, 3], num_classes=2),
        V,
        "confusion_matrix: predictions",
        "3",
    ),
    _plot(
        "confusion_matrix num_classes=0",
        lambda: plots.confusion_matrix([0, 1], [0, 1], num_classes=0),
        V,
        "confusion_matrix: num_classes",
        "0",
    ),
    _plot(
        "confusion_matrix fractional labels",
        lambda: plots.confusion_matrix([0.5, 1.0], [0, 1]),
        V,
        "confusion_matrix: labels",
        "0.5",
    ),
    _plot(
        "plot_confusion_matrix class_names a string",
        lambda: plots.plot_confusion_matrix([0, 1], [0, 1], _PNG, class_names="ab"),
        T,
        "class_names",
        "'ab'",
    ),
    _plot(
        "plot_confusion_matrix normalize a string",
        lambda: plots.plot_confusion_matrix([0, 1], [0, 1], _PNG, normalize="yes"),
        T,
        "normalize",
        "'yes'",
    ),
    _plot(
        "plot_image_grid no images",
        lambda: plots.plot_image_grid(np.zeros((0, 8, 8, 1)), [], None, _PNG),
        V,
        "plot_image_grid: images",
        "0",
    ),
    _plot(
        "plot_image_grid fewer labels",
        lambda: plots.plot_image_grid(_IMAGES, [0, 1], None, _PNG),
        V,
        "plot_image_grid: labels",
        "2",
        "4",
    ),
    _plot(
        "plot_image_grid max_images=0",
        lambda: plots.plot_image_grid(_IMAGES, [0] * 4, None, _PNG, max_images=0),
        V,
        "max_images",
        "0",
    ),
    _plot(
        "plot_history a string",
        lambda: plots.plot_history("loss", _PNG),
        T,
        "plot_history: history",
        "'loss'",
    ),
    _plot(
        "plot_history path=None",
        lambda: plots.plot_history({"loss": [1.0]}, None),
        T,
        "plot_history: path",
        "None",
    ),
    _plot(
        "plot_samples no images",
        lambda: plots.plot_samples(np.zeros((0, 8, 8, 1)), _PNG),
        V,
        "plot_samples: images",
        "0",
    ),
    _plot(
        "plot_samples reversed value_range",
        lambda: plots.plot_samples(_IMAGES, _PNG, value_range=(1.0, 0.0)),
        V,
        "value_range",
        "(1.0, 0.0)",
    ),
    _plot(
        "plot_samples scale=0",
        lambda: plots.plot_samples(_IMAGES, _PNG, scale=0),
        V,
        "plot_samples: scale",
        "0",
    ),
    _plot(
        "plot_filters max_filters=0",
        lambda: plots.plot_filters(np.zeros((3, 3, 1, 4)), _PNG, max_filters=0),
        V,
        "plot_filters: max_filters",
        "0",
    ),
    # gan
    _gan("noise n<0", lambda: gan.noise(_K, -1, 8), V, "noise: n", "-1"),
    _gan("noise latent_dim=True", lambda: gan.noise(_K, 4, True), T, "noise: latent_dim", "True"),
    _gan("noise key an int", lambda: gan.noise(0, 4, 8), T, "noise: key", "0"),
    _gan(
        "discriminator_objective label_smoothing=1",
        lambda: gan.discriminator_objective(_G, _D, 4, label_smoothing=1.0),
        V,
        "label_smoothing",
        "1.0",
    ),
    _gan(
        "discriminator_objective latent_dim a float",
        lambda: gan.discriminator_objective(_G, _D, 4.0),
        T,
        "discriminator_objective: latent_dim",
        "4.0",
    ),
    _gan(
        "discriminator_objective generator a string",
        lambda: gan.discriminator_objective("g", _D, 4),
        T,
        "discriminator_objective: generator",
        "'g'",
    ),
    _gan(
        "generator_objective conditional a string",
        lambda: gan.generator_objective(_G, _D, 4, conditional="yes"),
        T,
        "generator_objective: conditional",
        "'yes'",
    ),
    _gan("sample n=0", lambda: gan.sample(_G, {}, {}, _K, 0, 4), V, "sample: n", "0"),
    _gan(
        "make_sampler conditional=None",
        lambda: gan.make_sampler(_G, conditional=None),
        T,
        "make_sampler: conditional",
        "None",
    ),
    _gan("train_gan epochs=0", lambda: _train_gan(epochs=0), V, "train_gan: epochs", "0"),
    _gan(
        "train_gan negative learning rate",
        lambda: _train_gan(learning_rate=-2e-4),
        V,
        "train_gan: learning_rate",
        "-0.0002",
    ),
    _gan("train_gan beta1=1", lambda: _train_gan(beta1=1.0), V, "train_gan: beta1", "1.0"),
    _gan(
        "train_gan data a tuple",
        lambda: gan.train_gan(_G, _D, 4, (np.zeros((8, 8, 8, 1)), np.zeros(8))),
        T,
        "train_gan: data",
        "ArrayDataset",
    ),
    _gan(
        "SampleGrid every=0",
        lambda: gan.SampleGrid(_G, 4, tempfile.gettempdir(), every=0),
        V,
        "SampleGrid: every",
        "0",
    ),
    _gan(
        "inception_score splits=True",
        lambda: scores.inception_score(np.eye(4), splits=True),
        T,
        "inception_score: splits",
        "True",
    ),
    _gan(
        "confident_share threshold=nan",
        lambda: scores.confident_share(np.eye(2), float("nan")),
        V,
        "confident_share: threshold",
        "nan",
    ),
    _gan(
        "class_shares num_classes=True",
        lambda: scores.class_shares([0, 1], True),
        T,
        "class_shares: num_classes",
        "True",
    ),
    _gan(
        "digits_judge_trunk width=0",
        lambda: judge.digits_judge_trunk(width=0),
        V,
        "digits_judge_trunk: width",
        "0",
    ),
    _gan(
        "train_digits_judge members=0",
        lambda: judge.train_digits_judge(members=0),
        V,
        "train_digits_judge: members",
        "0",
    ),
    _gan(
        "SampleJudge batch_size=0",
        lambda: _judge(batch_size=0),
        V,
        "SampleJudge: batch_size",
        "0",
    ),
]
