"""Bad inputs to the model constructors and the character language model: area "models"."""

from __future__ import annotations

import jax
from bad_input import Bad

import jaxnets as jn
from jaxnets import models as M  # noqa: N812

_TEXT = "abcabcabd" * 40


def _sample(**kw):
    vocab = jn.data.CharVocab.from_text("ab")
    args = {"length": 5, "embed_dim": 4, "hidden": (8,), **kw}
    return M.sample({}, vocab, "ab", key=jax.random.key(0), **args)


def _train(**kw):
    args = {"embed_dim": 4, "hidden": (8,), "batch_size": 2, "seq_len": 8, "max_steps": 2}
    return M.train_char_lm(_TEXT[:300], _TEXT[300:], log=None, **{**args, **kw})


def _case(name, call, raises, *mentions):
    return Bad("models", name, call, raises, tuple(mentions))


T, V = TypeError, ValueError

CASES = [
    _case("mlp hidden an int", lambda: M.mlp(256), T, "mlp: hidden", "256"),
    _case("mlp hidden width 0", lambda: M.mlp((32, 0)), V, "mlp", "hidden", "0"),
    _case("mlp dropout=1.0", lambda: M.mlp(dropout=1.0), V, "mlp: dropout", "1.0"),
    _case("mlp num_classes=True", lambda: M.mlp(num_classes=True), T, "mlp: num_classes", "True"),
    _case("mlp batch_norm a string", lambda: M.mlp(batch_norm="yes"), T, "batch_norm", "'yes'"),
    _case("perceptron num_classes=0", lambda: M.perceptron(0), V, "perceptron: num_classes", "0"),
    _case(
        "lenet5 pooling unknown",
        lambda: M.lenet5(include_top=False, pooling="mean"),
        V,
        "lenet5: pooling",
        "'mean'",
        "'avg'",
    ),
    _case(
        "lenet5 include_top a string",
        lambda: M.lenet5(include_top="no"),
        T,
        "lenet5: include_top",
        "'no'",
    ),
    _case("resnet depth a string", lambda: M.resnet("50"), T, "resnet: depth", "'50'"),
    _case(
        "resnet convention unknown",
        lambda: M.resnet50(convention="caffe"),
        V,
        "convention",
        "'caffe'",
        "'keras'",
    ),
    _case("resnet18 num_classes=True", lambda: M.resnet18(True), T, "num_classes", "True"),
    _case("cifar_resnet depth=21", lambda: M.cifar_resnet(21), V, "cifar_resnet: depth", "21"),
    _case("vgg dropout=nan", lambda: M.vgg16(dropout=float("nan")), V, "dropout", "nan"),
    _case("vgg depth a float", lambda: M.vgg(16.0), T, "vgg: depth", "16.0"),
    _case(
        "inception_v3 pooling unknown",
        lambda: M.inception_v3(include_top=False, pooling="avgpool"),
        V,
        "pooling",
        "'avgpool'",
    ),
    _case("xception num_classes<0", lambda: M.xception(-1), V, "xception: num_classes", "-1"),
    _case(
        "lstm_classifier hidden=0",
        lambda: M.lstm_classifier(hidden=0),
        V,
        "lstm_classifier: hidden",
        "0",
    ),
    _case("lstm_classifier shift<0", lambda: M.lstm_classifier(shift=-1), V, "shift", "-1"),
    _case("char_rnn vocab_size=0", lambda: M.char_rnn(0), V, "char_rnn: vocab_size", "0"),
    _case("char_rnn no LSTM", lambda: M.char_rnn(30, hidden=()), V, "char_rnn: hidden", "()"),
    _case(
        "train_char_lm eval_every=0",
        lambda: _train(eval_every=0),
        V,
        "train_char_lm: eval_every",
        "0",
    ),
    _case(
        "train_char_lm learning_rate<0",
        lambda: _train(learning_rate=-1e-3),
        V,
        "train_char_lm: learning_rate",
        "-0.001",
    ),
    _case(
        "train_char_lm max_seconds=0",
        lambda: _train(max_seconds=0),
        V,
        "train_char_lm: max_seconds",
        "0",
    ),
    _case("char sample length<0", lambda: _sample(length=-1), V, "sample: length", "-1"),
    _case(
        "char sample temperature=nan",
        lambda: _sample(temperature=float("nan")),
        V,
        "sample: temperature",
        "nan",
    ),
    _case(
        "dcgan_generator latent_dim=True",
        lambda: M.dcgan_generator(True),
        T,
        "dcgan_generator: latent_dim",
        "True",
    ),
    _case(
        "mlp_discriminator image_shape of 2",
        lambda: M.mlp_discriminator(image_shape=(8, 8)),
        V,
        "mlp_discriminator: image_shape",
        "(8, 8)",
    ),
    _case(
        "dcgan_discriminator num_classes=0",
        lambda: M.dcgan_discriminator(num_classes=0),
        V,
        "dcgan_discriminator: num_classes",
        "0",
    ),
]
