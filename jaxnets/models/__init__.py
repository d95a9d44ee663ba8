"""Ready-made networks, each a function that returns a :class:`jaxnets.Layer`."""

from jaxnets.models.char_rnn import char_rnn, evaluate_bpc, sample, train_char_lm
from jaxnets.models.cifar_resnet import (
    cifar_resnet,
    resnet20,
    resnet32,
    resnet44,
    resnet56,
    resnet110,
)
from jaxnets.models.gan import (
    dcgan_discriminator,
    dcgan_generator,
    mlp_discriminator,
    mlp_generator,
)
from jaxnets.models.inception import inception_v3
from jaxnets.models.lenet import lenet5
from jaxnets.models.mlp import mlp, perceptron
from jaxnets.models.resnet import resnet, resnet18, resnet34, resnet50, resnet101, resnet152
from jaxnets.models.sequence import lstm_classifier
from jaxnets.models.transformer_lm import generate, transformer_lm
from jaxnets.models.transformer_train import evaluate_transformer_bpc, train_transformer_lm
from jaxnets.models.vgg import vgg, vgg11, vgg13, vgg16, vgg19
from jaxnets.models.vit import vit
from jaxnets.models.xception import xception

__all__ = [
    "char_rnn",
    "cifar_resnet",
    "dcgan_discriminator",
    "dcgan_generator",
    "evaluate_bpc",
    "evaluate_transformer_bpc",
    "generate",
    "inception_v3",
    "lenet5",
    "lstm_classifier",
    "mlp",
    "mlp_discriminator",
    "mlp_generator",
    "perceptron",
    "resnet",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet34",
    "resnet44",
    "resnet50",
    "resnet56",
    "resnet101",
    "resnet110",
    "resnet152",
    "sample",
    "train_char_lm",
    "train_transformer_lm",
    "transformer_lm",
    "vgg",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vit",
    "xception",
]
