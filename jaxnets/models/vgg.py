"""VGG-11/13/16/19 (Simonyan & Zisserman 2015), with and without BatchNorm."""

from __future__ import annotations

from jaxnets.activations import Relu, check_name
from jaxnets.core import Layer, serial
from jaxnets.core.arguments import flag, number
from jaxnets.layers import BatchNorm, Conv, Dense, Dropout, Flatten, MaxPool
from jaxnets.models._common import check_depth, check_top, head, model_serial

#: Convolutions per block (64, 128, 256, 512 and 512 filters) for each depth.
_BLOCKS = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
_WIDTHS = (64, 128, 256, 512, 512)


def vgg(
    depth: int,
    num_classes: int = 1000,
    *,
    batch_norm: bool = False,
    include_top: bool = True,
    pooling: str | None = None,
    dropout: float = 0.0,
    name: str | None = None,
) -> Layer:
    """VGG of ``depth`` 11, 13, 16 or 19 (Simonyan & Zisserman 2015, "Very deep
    convolutional networks for large-scale image recognition", configurations A, B, D, E).

    Five blocks ``block1``..``block5`` of 3x3 SAME convolutions with biases and ReLU
    (``conv1``, ``conv2``...), each closed by a 2x2 max ``pool``; then, with
    ``include_top``, ``flatten``, ``fc1`` and ``fc2`` (4096, ReLU) and ``logits``. This is
    the layout of Keras applications and torchvision: VGG16 has 138,357,544 parameters
    for 1000 classes on 224x224 inputs, and no state. The top is sized from the input
    (7x7x512 at 224x224); torchvision's adaptive pooling to 7x7 is not included.

    ``batch_norm=True`` gives torchvision's ``vgg*_bn``: each convolution keeps its bias
    and is followed by BatchNorm (``bn1``, ``bn2``...; epsilon 1e-5, momentum 0.9, i.e.
    PyTorch's 0.1) before the ReLU. ``dropout`` (torchvision uses 0.5, Keras none) is
    applied after ``fc1`` and ``fc2``. With ``include_top=False`` the output is
    ``block5``'s feature map, or its global average/maximum (``pooling="avg"``/``"max"``).
    Inputs need at least 32x32 pixels.

    Args:
      depth: 11, 13, 16 or 19.
      num_classes: the number of logits (with ``include_top``).
      batch_norm: add BatchNorm after each convolution (torchvision's ``vgg*_bn``).
      include_top: end with ``flatten``, ``fc1``, ``fc2`` and ``logits``.
      pooling: without the top, ``"avg"``, ``"max"`` or None, as above; ignored with the top.
      dropout: the dropout rate after ``fc1`` and ``fc2`` (0: none).
      name: the model's name (default ``vgg<depth>``, plus ``_bn`` with ``batch_norm``).

    Returns:
      The model: images ``(N, H, W, C)`` in, logits ``(N, num_classes)`` out (or the
      features chosen by ``pooling``).

    Example:
        >>> import jaxnets as jn
        >>> _, params, _ = jn.shape_tree(jn.models.vgg11(10), (1, 32, 32, 3))
        >>> params["block3"]["conv2"]["kernel"].shape, jn.count_params(params)
        ((3, 3, 256, 256), 28144010)
    """
    depth = check_depth("vgg", depth, _BLOCKS)
    flag("vgg", "batch_norm", batch_norm)
    check_name("vgg", name)
    name = name or f"vgg{depth}{'_bn' if batch_norm else ''}"
    check_top(name, num_classes, include_top, pooling)
    dropout = number(name, "dropout", dropout, low=0.0, high=1.0, high_open=True)
    blocks = []
    for b, (convs, width) in enumerate(zip(_BLOCKS[depth], _WIDTHS, strict=True), start=1):
        layers = []
        for c in range(1, convs + 1):
            if batch_norm:
                layers += [
                    (f"conv{c}", Conv(width, 3)),
                    (f"bn{c}", BatchNorm(0.9, 1e-5)),
                    (f"relu{c}", Relu()),
                ]
            else:
                layers.append((f"conv{c}", Conv(width, 3, activation="relu")))
        layers.append(("pool", MaxPool(2)))
        blocks.append((f"block{b}", serial(*layers)))
    if include_top:
        top = [("flatten", Flatten())]
        for f in (1, 2):
            top.append((f"fc{f}", Dense(4096, activation="relu")))
            if dropout > 0:
                top.append((f"dropout{f}", Dropout(dropout)))
        top.append(("logits", Dense(num_classes)))
    else:
        top = head(num_classes, False, pooling, name)
    return model_serial(name, 32, *blocks, *top)


def vgg11(num_classes: int = 1000, **kwargs) -> Layer:
    """VGG-11 (configuration A); see :func:`vgg` for the options.

    Args:
      num_classes: the number of logits.
      **kwargs: ``batch_norm``, ``include_top``, ``pooling``, ``dropout`` and ``name``, as
        in :func:`vgg`.

    Returns:
      The model, as :func:`vgg` builds it.
    """
    return vgg(11, num_classes, **kwargs)


def vgg13(num_classes: int = 1000, **kwargs) -> Layer:
    """VGG-13 (configuration B); see :func:`vgg` for the options.

    Args:
      num_classes: the number of logits.
      **kwargs: ``batch_norm``, ``include_top``, ``pooling``, ``dropout`` and ``name``, as
        in :func:`vgg`.

    Returns:
      The model, as :func:`vgg` builds it.
    """
    return vgg(13, num_classes, **kwargs)


def vgg16(num_classes: int = 1000, **kwargs) -> Layer:
    """VGG-16 (configuration D): 138,357,544 parameters; see :func:`vgg` for the options.

    Args:
      num_classes: the number of logits.
      **kwargs: ``batch_norm``, ``include_top``, ``pooling``, ``dropout`` and ``name``, as
        in :func:`vgg`.

    Returns:
      The model, as :func:`vgg` builds it.
    """
    return vgg(16, num_classes, **kwargs)


def vgg19(num_classes: int = 1000, **kwargs) -> Layer:
    """VGG-19 (configuration E); see :func:`vgg` for the options.

    Args:
      num_classes: the number of logits.
      **kwargs: ``batch_norm``, ``include_top``, ``pooling``, ``dropout`` and ``name``, as
        in :func:`vgg`.

    Returns:
      The model, as :func:`vgg` builds it.
    """
    return vgg(19, num_classes, **kwargs)
