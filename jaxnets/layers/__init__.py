"""Layers: each a function that returns a :class:`jaxnets.Layer`."""

from jaxnets.layers.attention import MultiHeadAttention
from jaxnets.layers.conv import Conv, ConvTranspose
from jaxnets.layers.dense import Dense, Flatten, Reshape
from jaxnets.layers.depthwise import DepthwiseConv, SeparableConv
from jaxnets.layers.dropout import AlphaDropout, Dropout
from jaxnets.layers.embedding import Embedding
from jaxnets.layers.masking import Masking
from jaxnets.layers.norm import BatchNorm, GroupNorm, LayerNorm
from jaxnets.layers.padding import ZeroPadding
from jaxnets.layers.pool import AvgPool, GlobalAvgPool, GlobalMaxPool, MaxPool
from jaxnets.layers.positional import LearnedPositions, SinusoidalPositions, apply_rotary
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
from jaxnets.layers.transformer import TransformerBlock

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
    "LearnedPositions",
    "Masking",
    "MaxPool",
    "MultiHeadAttention",
    "RNN",
    "Reshape",
    "ScanResult",
    "SeparableConv",
    "SimpleRNN",
    "SinusoidalPositions",
    "StackedRNN",
    "TransformerBlock",
    "ZeroPadding",
    "apply_rotary",
    "scan_cell",
]
