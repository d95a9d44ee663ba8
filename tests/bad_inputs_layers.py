"""Bad inputs to the layer constructors (and a few layer inputs): area "layers"."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from bad_input import Bad

import jaxnets as jn
from jaxnets.layers import scan_cell

_K = jax.random.key(0)


def _dense_rank1():
    layer = jn.Dense(3)
    _, params, _ = layer.init(_K, (2, 4))
    return layer.apply(params, {}, jnp.ones(4), train=False)


def _carry_without_shape():
    layer = jn.RNN(jn.GRU(4))
    _, params, _ = layer.init(_K, (2, 5, 3))
    x = jnp.ones((2, 5, 3))
    return layer.apply(params, {}, (x, jnp.array([5, 3]), {"h": 0.0}), train=False)


def _reshape_zero_and_inferred():
    return jn.Reshape((0, -1)).init(_K, (2, 0))


def _case(name, call, raises, *mentions):
    return Bad("layers", name, call, raises, tuple(mentions))


T, V, LE = TypeError, ValueError, jn.LayerError

CASES = [
    # Dense, Flatten, Reshape
    _case("Dense features=True", lambda: jn.Dense(True), T, "Dense", "features", "True"),
    _case("Dense features=0", lambda: jn.Dense(0), V, "Dense: features", "positive int", "0"),
    _case("Dense features=2.5", lambda: jn.Dense(2.5), T, "Dense: features", "2.5"),
    _case("Dense use_bias='no'", lambda: jn.Dense(3, use_bias="no"), T, "use_bias", "'no'"),
    _case("Dense activation=5", lambda: jn.Dense(3, activation=5), T, "Dense", "activation", "5"),
    _case(
        "Dense activation misspelt",
        lambda: jn.Dense(3, activation="rleu"),
        V,
        "Dense",
        "'rleu'",
        "'relu'",
    ),
    _case(
        "Dense kernel_init a string",
        lambda: jn.Dense(3, kernel_init="glorot"),
        T,
        "Dense: kernel_init",
        "'glorot'",
    ),
    _case("Dense name=3", lambda: jn.Dense(3, name=3), T, "Dense: name", "3"),
    _case("Dense apply on rank 1", _dense_rank1, LE, "Dense", "rank >= 2", "(4,)"),
    _case("Flatten name a list", lambda: jn.Flatten(name=["a"]), T, "Flatten: name", "['a']"),
    _case("Reshape shape an int", lambda: jn.Reshape(5), T, "Reshape: shape", "5"),
    _case("Reshape 0 with -1", _reshape_zero_and_inferred, V, "Reshape", "(0, -1)"),
    _case("Reshape two -1", lambda: jn.Reshape((-1, -1)), V, "Reshape", "(-1, -1)", "one -1"),
    _case("Reshape negative size", lambda: jn.Reshape((-2, 4)), V, "Reshape", "(-2, 4)"),
    _case("Reshape float size", lambda: jn.Reshape((2.0, 3)), T, "Reshape: shape", "2.0"),
    # Dropout
    _case("Dropout rate=1.0", lambda: jn.Dropout(1.0), V, "Dropout: rate", "1.0", "[0, 1)"),
    _case("Dropout rate=nan", lambda: jn.Dropout(float("nan")), V, "Dropout: rate", "nan"),
    _case("Dropout rate=True", lambda: jn.Dropout(True), T, "Dropout: rate", "True"),
    _case("AlphaDropout rate<0", lambda: jn.AlphaDropout(-0.1), V, "AlphaDropout: rate", "-0.1"),
    # Embedding
    _case(
        "Embedding num_embeddings=True",
        lambda: jn.Embedding(True, 4),
        T,
        "Embedding: num_embeddings",
        "True",
    ),
    _case("Embedding features=0", lambda: jn.Embedding(10, 0), V, "Embedding: features", "0"),
    _case(
        "Embedding embedding_init a float",
        lambda: jn.Embedding(10, 4, embedding_init=1.0),
        T,
        "Embedding: embedding_init",
        "1.0",
    ),
    # normalisation
    _case("BatchNorm momentum=1.5", lambda: jn.BatchNorm(1.5), V, "BatchNorm: momentum", "1.5"),
    _case(
        "BatchNorm momentum=nan",
        lambda: jn.BatchNorm(float("nan")),
        V,
        "BatchNorm: momentum",
        "nan",
    ),
    _case("BatchNorm epsilon=0", lambda: jn.BatchNorm(epsilon=0), V, "BatchNorm: epsilon", "> 0"),
    _case(
        "BatchNorm epsilon a string",
        lambda: jn.BatchNorm(epsilon="1e-5"),
        T,
        "BatchNorm: epsilon",
        "'1e-5'",
    ),
    _case("BatchNorm impl unknown", lambda: jn.BatchNorm(impl="fast"), V, "impl", "'fast'"),
    _case(
        "BatchNorm use_scale=None",
        lambda: jn.BatchNorm(use_scale=None),
        T,
        "BatchNorm: use_scale",
        "None",
    ),
    _case("LayerNorm epsilon<0", lambda: jn.LayerNorm(-1e-5), V, "LayerNorm: epsilon", "-1e-05"),
    _case("LayerNorm use_bias=1", lambda: jn.LayerNorm(use_bias=1), T, "LayerNorm: use_bias", "1"),
    _case(
        "GroupNorm num_groups=True",
        lambda: jn.GroupNorm(True),
        T,
        "GroupNorm: num_groups",
        "True",
    ),
    _case(
        "GroupNorm epsilon=inf",
        lambda: jn.GroupNorm(2, float("inf")),
        V,
        "GroupNorm: epsilon",
        "inf",
    ),
    # padding
    _case("ZeroPadding padding=True", lambda: jn.ZeroPadding(True), T, "ZeroPadding", "True"),
    _case("ZeroPadding padding=1.5", lambda: jn.ZeroPadding(1.5), T, "ZeroPadding: padding", "1.5"),
    # convolutions
    _case("Conv features=True", lambda: jn.Conv(True, 3), T, "Conv: features", "True"),
    _case("Conv kernel_size=3.0", lambda: jn.Conv(4, 3.0), T, "Conv: kernel_size", "3.0"),
    _case("Conv strides with a bool", lambda: jn.Conv(4, 3, (1, True)), T, "Conv: strides", "True"),
    _case(
        "Conv padding unknown",
        lambda: jn.Conv(4, 3, padding="FULL"),
        V,
        "Conv: padding",
        "'FULL'",
        "'SAME'",
    ),
    _case("Conv padding=None", lambda: jn.Conv(4, 3, padding=None), T, "Conv: padding", "None"),
    _case("Conv dilation=0", lambda: jn.Conv(4, 3, dilation=0), V, "Conv: dilation", "0"),
    _case("Conv groups=2.0", lambda: jn.Conv(4, 3, groups=2.0), T, "Conv: groups", "2.0"),
    _case(
        "Conv activation unknown",
        lambda: jn.Conv(4, 3, activation="nope"),
        V,
        "Conv",
        "'nope'",
    ),
    _case(
        "ConvTranspose padding CAUSAL",
        lambda: jn.ConvTranspose(4, 3, padding="CAUSAL"),
        V,
        "ConvTranspose: padding",
        "'CAUSAL'",
    ),
    _case(
        "ConvTranspose features<0",
        lambda: jn.ConvTranspose(-1, 3),
        V,
        "ConvTranspose: features",
        "-1",
    ),
    _case(
        "DepthwiseConv depth_multiplier=True",
        lambda: jn.DepthwiseConv(3, depth_multiplier=True),
        T,
        "DepthwiseConv: depth_multiplier",
        "True",
    ),
    _case(
        "SeparableConv use_bias a string",
        lambda: jn.SeparableConv(4, 3, use_bias="False"),
        T,
        "SeparableConv: use_bias",
        "'False'",
    ),
    # pooling
    _case("MaxPool window=True", lambda: jn.MaxPool(True), T, "MaxPool: window", "True"),
    _case("MaxPool impl unknown", lambda: jn.MaxPool(2, impl="fast"), V, "MaxPool", "'fast'"),
    _case(
        "AvgPool count_include_pad a string",
        lambda: jn.AvgPool(2, count_include_pad="yes"),
        T,
        "AvgPool: count_include_pad",
        "'yes'",
    ),
    _case("AvgPool strides=0", lambda: jn.AvgPool(2, 0), V, "AvgPool: strides", "0"),
    _case(
        "GlobalAvgPool keepdims a string",
        lambda: jn.GlobalAvgPool("True"),
        T,
        "GlobalAvgPool: keepdims",
        "'True'",
    ),
    _case(
        "GlobalMaxPool keepdims=1", lambda: jn.GlobalMaxPool(1), T, "GlobalMaxPool: keepdims", "1"
    ),
    # recurrent cells and layers
    _case("SimpleRNN features=True", lambda: jn.SimpleRNN(True), T, "SimpleRNN: features", "True"),
    _case(
        "SimpleRNN activation unknown",
        lambda: jn.SimpleRNN(4, activation="tanhh"),
        V,
        "SimpleRNN",
        "'tanhh'",
    ),
    _case(
        "LSTM forget_bias=nan",
        lambda: jn.LSTM(4, forget_bias=float("nan")),
        V,
        "LSTM: forget_bias",
        "nan",
    ),
    _case("LSTM impl unknown", lambda: jn.LSTM(4, impl="cudnn"), V, "LSTM", "impl", "'cudnn'"),
    _case("GRU features=0", lambda: jn.GRU(0), V, "GRU: features", "0"),
    _case("GRU fused a string", lambda: jn.GRU(4, fused="yes"), T, "GRU: fused", "'yes'"),
    _case("RNN cell a Layer", lambda: jn.RNN(jn.Dense(3)), T, "RNN: cell", "Layer"),
    _case("RNN unroll=0", lambda: jn.RNN(jn.LSTM(4), unroll=0), V, "RNN: unroll", "0"),
    _case(
        "RNN return_sequences a string",
        lambda: jn.RNN(jn.LSTM(4), return_sequences="False"),
        T,
        "RNN: return_sequences",
        "'False'",
    ),
    _case("StackedRNN no cells", lambda: jn.StackedRNN([]), V, "StackedRNN: cells", "[]"),
    _case(
        "StackedRNN one cell not in a list",
        lambda: jn.StackedRNN(jn.LSTM(4)),
        T,
        "StackedRNN: cells",
        "Cell",
    ),
    _case(
        "Bidirectional merge unknown",
        lambda: jn.Bidirectional(jn.LSTM(4), merge="avg"),
        V,
        "Bidirectional: merge",
        "'avg'",
        "'ave'",
    ),
    _case(
        "Bidirectional backward a string",
        lambda: jn.Bidirectional(jn.LSTM(4), "LSTM"),
        T,
        "Bidirectional: backward",
        "'LSTM'",
    ),
    _case(
        "Bidirectional return_carry=None",
        lambda: jn.Bidirectional(jn.LSTM(4), return_carry=None),
        T,
        "Bidirectional: return_carry",
        "None",
    ),
    _case(
        "scan_cell cell a Layer",
        lambda: scan_cell(jn.Dense(3), {}, jnp.ones((2, 5, 3))),
        T,
        "scan_cell: cell",
        "Layer",
    ),
    _case(
        "RNN initial carry leaf without shape",
        _carry_without_shape,
        LE,
        "initial carry",
        "(2, 4)",
        "()",
    ),
]
