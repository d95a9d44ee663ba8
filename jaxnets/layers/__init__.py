"""Layers: each a function that returns a :class:`jaxnets.Layer`."""

from jaxnets.layers.dense import Dense, Flatten, Reshape
from jaxnets.layers.dropout import AlphaDropout, Dropout
from jaxnets.layers.norm import BatchNorm, LayerNorm

__all__ = ["AlphaDropout", "BatchNorm", "Dense", "Dropout", "Flatten", "LayerNorm", "Reshape"]
