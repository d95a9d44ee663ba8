"""Xception (Chollet 2017), as Keras applications."""

from __future__ import annotations

from typing import TypedDict

from jaxnets.activations import Relu, check_name
from jaxnets.core import Layer, residual, serial
from jaxnets.layers import BatchNorm, MaxPool, SeparableConv
from jaxnets.models._common import check_top, conv_bn, head, model_serial


class _BNOptions(TypedDict):
    momentum: float
    epsilon: float


class _ConvBNOptions(_BNOptions):
    use_bias: bool


_BN: _BNOptions = {"momentum": 0.99, "epsilon": 1e-3}


def _sep(k: int, features: int, relu_before: bool, relu_after: bool = False) -> list:
    """``[relu{k}], sepconv{k}, bn{k}, [relu{k}]``: a 3x3 separable convolution without
    bias and its BatchNorm, with the ReLU before (Keras's ``..._act``) or after it."""
    layers = [("relu" + str(k), Relu())] if relu_before else []
    layers += [
        (f"sepconv{k}", SeparableConv(features, 3, use_bias=False)),
        (f"bn{k}", BatchNorm(**_BN)),
    ]
    if relu_after:
        layers.append((f"relu{k}", Relu()))
    return layers


def _down_block(widths: tuple[int, int], relu_first: bool) -> Layer:
    """Two separable units and a 3x3/2 max ``pool``, plus a strided 1x1 projection."""
    main = serial(
        *_sep(1, widths[0], relu_first),
        *_sep(2, widths[1], True),
        ("pool", MaxPool(3, 2, "SAME")),
    )
    shortcut = serial(*conv_bn("", widths[1], 1, 2, "SAME", use_bias=False, relu=False, **_BN))
    return residual(main, shortcut)


def xception(
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "xception",
) -> Layer:
    """Xception (Chollet 2017, "Xception: deep learning with depthwise separable
    convolutions") in the layout of Keras applications, for 299x299 images.

    Entry flow: ``block1`` (``conv1`` 32 3x3/2 and ``conv2`` 64 3x3, both VALID, each
    with ``bn`` and ``relu``), then residual ``block2``..``block4`` (128, 256, 728): a
    ``main`` of two separable units (``sepconv1``/``bn1``, ``sepconv2``/``bn2``, ReLUs
    before them except at the start of block2) and a 3x3/2 SAME max ``pool``, plus a
    ``shortcut`` of a strided 1x1 ``conv`` and ``bn``. Middle flow: ``block5``..``block12``,
    three ReLU-separable-BN units with identity shortcuts. Exit flow: ``block13``
    (728 then 1024, with a projection) and ``block14`` (separable 1536 and 2048, each
    followed by BN and ReLU). Then global average ``pool`` and ``logits``, or the pooling
    that ``pooling`` names.

    Convolutions have no bias, separable convolutions no depthwise bias; BatchNorm
    epsilon 1e-3, momentum 0.99 (Keras's defaults). Parameters for 1000 classes:
    22,855,952, plus 54,528 BatchNorm statistics in state (22,910,480 in all, Keras's
    figure). Inputs need at least 71x71 pixels.

    Args:
      num_classes: the number of logits (with ``include_top``).
      include_top: end with the global average ``pool`` and the ``logits`` Dense layer.
      pooling: without the top, ``"avg"`` or ``"max"`` global pooling, or None to keep
        ``block14``'s feature map (10x10x2048 at 299x299); ignored with the top.
      name: the model's name.

    Returns:
      The model: images ``(N, H, W, C)`` in, logits ``(N, num_classes)`` out (or the
      features chosen by ``pooling``).

    Example:
        >>> import jaxnets as jn
        >>> out, params, state = jn.shape_tree(jn.models.xception(), (1, 299, 299, 3))
        >>> out.shape, jn.count_params(params), jn.count_params(state)
        ((1, 1000), 22855952, 54528)
    """
    check_name("xception", name)
    check_top(name, num_classes, include_top, pooling)
    unit: _ConvBNOptions = {"use_bias": False, **_BN}
    blocks = [
        (
            "block1",
            serial(
                *conv_bn("1", 32, 3, 2, "VALID", **unit), *conv_bn("2", 64, 3, 1, "VALID", **unit)
            ),
        ),
        ("block2", _down_block((128, 128), relu_first=False)),
        ("block3", _down_block((256, 256), relu_first=True)),
        ("block4", _down_block((728, 728), relu_first=True)),
    ]
    for b in range(5, 13):
        main = serial(*_sep(1, 728, True), *_sep(2, 728, True), *_sep(3, 728, True))
        blocks.append((f"block{b}", residual(main)))
    blocks.append(("block13", _down_block((728, 1024), relu_first=True)))
    exit_convs = serial(*_sep(1, 1536, False, True), *_sep(2, 2048, False, True))
    blocks.append(("block14", exit_convs))
    return model_serial(name, 71, *blocks, *head(num_classes, include_top, pooling, name))
