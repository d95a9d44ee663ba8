"""Generative adversarial networks: the players' objectives, training with ``fit``, and
judging samples without eyes.

The networks are in :mod:`jaxnets.models` (``dcgan_generator``, ``dcgan_discriminator``,
``mlp_generator``, ``mlp_discriminator``); the scores in :mod:`jaxnets.gan.scores` serve
any image generator.
"""

from jaxnets.gan.judge import SampleJudge, digits_judge_trunk, train_digits_judge
from jaxnets.gan.objectives import discriminator_objective, generator_objective, noise, sample
from jaxnets.gan.scores import (
    class_shares,
    conditional_accuracy,
    confident_share,
    frechet_distance,
    inception_score,
)
from jaxnets.gan.training import (
    SampleGrid,
    make_sampler,
    plot_gan_history,
    train_gan,
)

__all__ = [
    "SampleGrid",
    "SampleJudge",
    "class_shares",
    "conditional_accuracy",
    "confident_share",
    "digits_judge_trunk",
    "discriminator_objective",
    "frechet_distance",
    "generator_objective",
    "inception_score",
    "make_sampler",
    "noise",
    "plot_gan_history",
    "sample",
    "train_digits_judge",
    "train_gan",
]
