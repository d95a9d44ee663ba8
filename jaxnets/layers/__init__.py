"""Layers: each a function that returns a :class:`jaxnets.Layer`."""

from jaxnets.layers.conv import Conv, ConvTranspose
from jaxnets.layers.dense import Dense, Flatten, Reshape
from jaxnets.layers.depthwise import DepthwiseConv, SeparableConv
from jaxnets.layers.dropout import AlphaDropout, Dropout
from jaxnets.layers.embedding import Embedding
from jaxnets.layers.norm import BatchNorm, GroupNorm, LayerNorm
from jaxnets.layers.padding import ZeroPadding
from jaxnets.layers.pool import AvgPool, GlobalAvgPool, GlobalMaxPool, MaxPool
from jaxnets.layers.recurrent import (
    GRU,
    LSTM,
    RNN,
    Bidirectional,
    Cell,
    ScanResult,
    SimpleRNN,
    StackedRNN,
    scan_cell,
)

__all__ = [
    "AlphaDropout",
    "AvgPool",
    "BatchNorm",
    "Bidirectional",
    "Cell",
    "Conv",
    "ConvTranspose",
    "Dense",
    "DepthwiseConv",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRU",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "GroupNorm",
    "LSTM",
    "LayerNorm",
    "MaxPool",
    "RNN",
    "Reshape",
    "ScanResult",
    "SeparableConv",
    "SimpleRNN",
    "StackedRNN",
    "ZeroPadding",
    "scan_cell",
]
