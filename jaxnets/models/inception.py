"""Inception v3 (Szegedy, Vanhoucke, Ioffe, Shlens & Wojna 2016), as Keras applications."""

from __future__ import annotations

from jaxnets.activations import check_name
from jaxnets.core import Layer, branches, serial
from jaxnets.layers import AvgPool, MaxPool
from jaxnets.models._common import check_top, conv_bn, head, model_serial


def _unit(suffix: str, features: int, kernel_size, strides=1, padding="SAME"):
    """Keras's ``conv2d_bn``: convolution without bias, BatchNorm without scale, ReLU."""
    return conv_bn(
        suffix,
        features,
        kernel_size,
        strides,
        padding,
        use_bias=False,
        momentum=0.99,
        epsilon=1e-3,
        use_scale=False,
    )


def _chain(*units: tuple) -> Layer:
    """A branch of units ``conv1``, ``bn1``, ``relu1``, ``conv2``... from (features, kernel,
    [strides, padding]) tuples."""
    layers = []
    for i, unit in enumerate(units, start=1):
        layers += _unit(str(i), *unit)
    return serial(*layers)


def _pool_branch(features: int) -> Layer:
    """3x3 average pooling (stride 1, SAME, padding not counted) then a 1x1 unit."""
    return serial(("pool", AvgPool(3, 1, "SAME")), *_unit("", features, 1))


def _split(features: int) -> Layer:
    """The 1x3 and 3x1 units side by side, concatenated (the 8x8 modules)."""
    return branches(
        ("1x3", serial(*_unit("", features, (1, 3)))), ("3x1", serial(*_unit("", features, (3, 1))))
    )


def _module_35(pool_features: int) -> Layer:
    """Figure 5's module at 35x35 (``mixed0``..``mixed2``)."""
    return branches(
        ("branch1x1", _chain((64, 1))),
        ("branch5x5", _chain((48, 1), (64, 5))),
        ("branch3x3dbl", _chain((64, 1), (96, 3), (96, 3))),
        ("branch_pool", _pool_branch(pool_features)),
    )


def _reduce_35_to_17() -> Layer:
    """Grid reduction 35x35 -> 17x17 (``mixed3``)."""
    return branches(
        ("branch3x3", _chain((384, 3, 2, "VALID"))),
        ("branch3x3dbl", _chain((64, 1), (96, 3), (96, 3, 2, "VALID"))),
        ("branch_pool", MaxPool(3, 2)),
    )


def _module_17(width: int) -> Layer:
    """Figure 6's module with factorised 7x7 convolutions (``mixed4``..``mixed7``)."""
    return branches(
        ("branch1x1", _chain((192, 1))),
        ("branch7x7", _chain((width, 1), (width, (1, 7)), (192, (7, 1)))),
        (
            "branch7x7dbl",
            _chain((width, 1), (width, (7, 1)), (width, (1, 7)), (width, (7, 1)), (192, (1, 7))),
        ),
        ("branch_pool", _pool_branch(192)),
    )


def _reduce_17_to_8() -> Layer:
    """Grid reduction 17x17 -> 8x8 (``mixed8``)."""
    return branches(
        ("branch3x3", _chain((192, 1), (320, 3, 2, "VALID"))),
        ("branch7x7x3", _chain((192, 1), (192, (1, 7)), (192, (7, 1)), (192, 3, 2, "VALID"))),
        ("branch_pool", MaxPool(3, 2)),
    )


def _module_8() -> Layer:
    """Figure 7's module with expanded filter banks at 8x8 (``mixed9``, ``mixed10``)."""
    return branches(
        ("branch1x1", _chain((320, 1))),
        ("branch3x3", serial(*_unit("1", 384, 1), ("split", _split(384)))),
        ("branch3x3dbl", serial(*_unit("1", 448, 1), *_unit("2", 384, 3), ("split", _split(384)))),
        ("branch_pool", _pool_branch(192)),
    )


def inception_v3(
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "inception_v3",
) -> Layer:
    """Inception v3 (Szegedy et al. 2016, "Rethinking the Inception architecture for
    computer vision") in the layout of Keras applications, for 299x299 images.

    ``stem``: units ``conv1`` (32, 3x3/2 VALID), ``conv2`` (32, 3x3 VALID), ``conv3`` (64,
    3x3 SAME), max ``pool1`` (3x3/2), ``conv4`` (80, 1x1), ``conv5`` (192, 3x3 VALID), max
    ``pool2``; then Inception modules ``mixed0``..``mixed10`` (Keras's names), each a
    ``branches`` of serial branches (``branch1x1``, ``branch5x5``, ``branch3x3dbl``,
    ``branch_pool``...) concatenated on channels: 35x35x256/288/288, 17x17x768 (five
    modules), 8x8x1280, 8x8x2048 twice. Then global average ``pool`` and ``logits`` (no
    auxiliary classifier, as Keras), or the pooling that ``pooling`` names.

    Every unit is a convolution without bias, a BatchNorm without scale (``scale=False``
    in Keras: a learnt offset only; epsilon 1e-3, momentum 0.99) and a ReLU. Average
    pooling with SAME padding does not count the padding (as TensorFlow). Parameters
    for 1000 classes: 23,817,352, plus 34,432 BatchNorm statistics in state
    (23,851,784 in all, Keras's figure). Inputs need at least 75x75 pixels.

    Args:
      num_classes: the number of logits (with ``include_top``).
      include_top: end with the global average ``pool`` and the ``logits`` Dense layer.
      pooling: without the top, ``"avg"`` or ``"max"`` global pooling, or None to keep the
        ``mixed10`` feature map (8x8x2048 at 299x299); ignored with the top.
      name: the model's name.

    Returns:
      The model: images ``(N, H, W, C)`` in, logits ``(N, num_classes)`` out (or the
      features chosen by ``pooling``).

    Example:
        >>> import jaxnets as jn
        >>> out, params, state = jn.shape_tree(jn.models.inception_v3(), (1, 299, 299, 3))
        >>> out.shape, jn.count_params(params), jn.count_params(state)
        ((1, 1000), 23817352, 34432)
    """
    check_name("inception_v3", name)
    check_top(name, num_classes, include_top, pooling)
    stem = serial(
        *_unit("1", 32, 3, 2, "VALID"),
        *_unit("2", 32, 3, 1, "VALID"),
        *_unit("3", 64, 3),
        ("pool1", MaxPool(3, 2)),
        *_unit("4", 80, 1, 1, "VALID"),
        *_unit("5", 192, 3, 1, "VALID"),
        ("pool2", MaxPool(3, 2)),
    )
    modules = [_module_35(32), _module_35(64), _module_35(64), _reduce_35_to_17()]
    modules += [_module_17(w) for w in (128, 160, 160, 192)]
    modules += [_reduce_17_to_8(), _module_8(), _module_8()]
    mixed = [(f"mixed{i}", m) for i, m in enumerate(modules)]
    return model_serial(
        name, 75, ("stem", stem), *mixed, *head(num_classes, include_top, pooling, name)
    )
