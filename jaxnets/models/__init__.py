"""Ready-made networks, each a function that returns a :class:`jaxnets.Layer`."""

from jaxnets.models.mlp import mlp, perceptron

__all__ = ["mlp", "perceptron"]
