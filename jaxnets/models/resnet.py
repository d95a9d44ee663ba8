"""ResNet-18/34/50/101/152 for ImageNet (He, Zhang, Ren & Sun 2016)."""

from __future__ import annotations

from jaxnets.activations import Relu, check_name
from jaxnets.core import Layer, residual, serial
from jaxnets.core.arguments import choice
from jaxnets.layers import MaxPool, ZeroPadding
from jaxnets.models._common import (
    TORCH_KAIMING,
    check_depth,
    check_top,
    conv_bn,
    head,
    model_serial,
)

#: Residual blocks per stage (conv2_x .. conv5_x) and whether they are bottlenecks.
_LAYOUT = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}
_WIDTHS = (64, 128, 256, 512)
_CONVENTIONS = ("keras", "torchvision")


def _options(convention: str) -> dict:
    """Conv and BatchNorm settings of a convention (see :func:`resnet`)."""
    if convention == "keras":
        return {"use_bias": True, "momentum": 0.99, "epsilon": 1.001e-5, "kernel_init": None}
    return {"use_bias": False, "momentum": 0.9, "epsilon": 1e-5, "kernel_init": TORCH_KAIMING}


def _block(width: int, strides: int, bottleneck: bool, project: bool, convention: str) -> Layer:
    """One residual block (without its final ReLU): ``main`` plus the ``shortcut``."""
    opts = _options(convention)
    # torchvision pads the 3x3 convolutions by one on each side; Keras uses SAME.
    pad3 = 1 if convention == "torchvision" else "SAME"
    if bottleneck:
        # Keras (ResNet v1) strides the first 1x1 convolution, torchvision (v1.5) the 3x3.
        s1, s3 = (strides, 1) if convention == "keras" else (1, strides)
        main = serial(
            *conv_bn("1", width, 1, s1, "VALID", **opts),
            *conv_bn("2", width, 3, s3, pad3, **opts),
            *conv_bn("3", 4 * width, 1, 1, "VALID", relu=False, **opts),
        )
        out = 4 * width
    else:
        main = serial(
            *conv_bn("1", width, 3, strides, pad3, **opts),
            *conv_bn("2", width, 3, 1, pad3, relu=False, **opts),
        )
        out = width
    shortcut = (
        serial(*conv_bn("", out, 1, strides, "VALID", relu=False, **opts)) if project else None
    )
    return residual(main, shortcut)


def _stem(convention: str) -> Layer:
    opts = _options(convention)
    if convention == "keras":
        return serial(
            ("pad", ZeroPadding(3)),
            *conv_bn("", 64, 7, 2, "VALID", **opts),
            ("pool_pad", ZeroPadding(1)),
            ("pool", MaxPool(3, 2)),
        )
    return serial(*conv_bn("", 64, 7, 2, 3, **opts), ("pool", MaxPool(3, 2, padding=1)))


def resnet(
    depth: int,
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    pooling: str | None = None,
    convention: str | None = None,
    name: str | None = None,
) -> Layer:
    """A ResNet of ``depth`` 18, 34, 50, 101 or 152 for 224x224 images (He, Zhang, Ren &
    Sun 2016, "Deep residual learning for image recognition", Table 1).

    Layout: ``stem`` (7x7/2 ``conv``, ``bn``, ``relu``, 3x3/2 max ``pool``), then stages
    ``stage2``..``stage5`` (the paper's conv2_x..conv5_x, 64 to 512 wide) of residual
    blocks ``block1``, ``block2``... each followed by its ReLU (``block1_relu``...). A
    block holds ``main`` (``conv1``, ``bn1``, ``relu1``, ``conv2``... basic 3x3 pairs
    for depths 18/34, 1x1-3x3-1x1 bottlenecks four times wider at the output for 50+)
    and, in the first block of a stage that changes the shape, a ``shortcut``
    projection (1x1 ``conv`` and ``bn``): ``params["stage2"]["block1"]["main"]["conv1"]``.
    Then global average ``pool`` and ``logits`` (with ``include_top``), or the pooling
    that ``pooling`` names (``None``, ``"avg"``, ``"max"``). Inputs need at least 32x32.

    ``convention`` (default: ``"torchvision"`` for 18/34, ``"keras"`` for 50/101/152):

    - ``"keras"`` (Keras applications): every convolution has a bias; the stride of a
      bottleneck is on its first 1x1 convolution (ResNet v1); 3x3 convolutions use SAME
      padding and the stem zero-pads explicitly; BatchNorm epsilon 1.001e-5, momentum
      0.99; Glorot-uniform kernels. ResNet-50: 25,636,712 numbers = 25,583,592 params +
      53,120 BatchNorm statistics (state).
    - ``"torchvision"``: convolutions without bias, the bottleneck stride on the 3x3
      convolution (ResNet v1.5), explicit padding as PyTorch; BatchNorm epsilon 1e-5,
      momentum 0.9 (PyTorch's 0.1); He-normal (fan-out) kernels. ResNet-18: 11,689,512
      params, ResNet-50: 25,557,032 (plus 9,600 and 53,120 statistics in state, which
      torchvision's figures leave out).

    The head outputs logits (Keras applies a softmax). The parameter counts do not
    depend on the input size.

    Args:
      depth: 18, 34, 50, 101 or 152.
      num_classes: the number of logits (with ``include_top``).
      include_top: end with the global average ``pool`` and the ``logits`` Dense layer.
      pooling: without the top, ``"avg"`` or ``"max"`` global pooling, or None to keep
        ``stage5``'s feature map; ignored with the top.
      convention: ``"keras"`` or ``"torchvision"``, as above (None: by depth).
      name: the model's name (default ``resnet<depth>``).

    Returns:
      The model: images ``(N, H, W, C)`` in, logits ``(N, num_classes)`` out (or the
      features chosen by ``pooling``).

    Example:
        >>> import jaxnets as jn
        >>> out, params, state = jn.shape_tree(jn.models.resnet18(), (1, 224, 224, 3))
        >>> out.shape, jn.count_params(params), jn.count_params(state)
        ((1, 1000), 11689512, 9600)
    """
    depth = check_depth("resnet", depth, _LAYOUT)
    blocks_per_stage, bottleneck = _LAYOUT[depth]
    if convention is None:
        convention = "keras" if bottleneck else "torchvision"
    choice("resnet", "convention", convention, _CONVENTIONS)
    check_name("resnet", name)
    name = name or f"resnet{depth}"
    check_top(name, num_classes, include_top, pooling)
    stages = []
    channels = 64
    for s, (count, width) in enumerate(zip(blocks_per_stage, _WIDTHS, strict=True), start=2):
        layers = []
        for b in range(1, count + 1):
            strides = 2 if b == 1 and s > 2 else 1
            out = 4 * width if bottleneck else width
            project = strides != 1 or channels != out
            layers += [
                (f"block{b}", _block(width, strides, bottleneck, project, convention)),
                (f"block{b}_relu", Relu()),
            ]
            channels = out
        stages.append((f"stage{s}", serial(*layers)))
    return model_serial(
        name,
        32,
        ("stem", _stem(convention)),
        *stages,
        *head(num_classes, include_top, pooling, name),
    )


def resnet18(num_classes: int = 1000, **kwargs) -> Layer:
    """ResNet-18, torchvision convention by default; see :func:`resnet`.

    Args:
      num_classes: the number of logits.
      **kwargs: ``include_top``, ``pooling``, ``convention`` and ``name``, as in
        :func:`resnet`.

    Returns:
      The model, as :func:`resnet` builds it.
    """
    return resnet(18, num_classes, **kwargs)


def resnet34(num_classes: int = 1000, **kwargs) -> Layer:
    """ResNet-34, torchvision convention by default; see :func:`resnet`.

    Args:
      num_classes: the number of logits.
      **kwargs: ``include_top``, ``pooling``, ``convention`` and ``name``, as in
        :func:`resnet`.

    Returns:
      The model, as :func:`resnet` builds it.
    """
    return resnet(34, num_classes, **kwargs)


def resnet50(num_classes: int = 1000, **kwargs) -> Layer:
    """ResNet-50, Keras applications convention by default; see :func:`resnet`.

    Args:
      num_classes: the number of logits.
      **kwargs: ``include_top``, ``pooling``, ``convention`` and ``name``, as in
        :func:`resnet`.

    Returns:
      The model, as :func:`resnet` builds it.
    """
    return resnet(50, num_classes, **kwargs)


def resnet101(num_classes: int = 1000, **kwargs) -> Layer:
    """ResNet-101, Keras applications convention by default; see :func:`resnet`.

    Args:
      num_classes: the number of logits.
      **kwargs: ``include_top``, ``pooling``, ``convention`` and ``name``, as in
        :func:`resnet`.

    Returns:
      The model, as :func:`resnet` builds it.
    """
    return resnet(101, num_classes, **kwargs)


def resnet152(num_classes: int = 1000, **kwargs) -> Layer:
    """ResNet-152, Keras applications convention by default; see :func:`resnet`.

    Args:
      num_classes: the number of logits.
      **kwargs: ``include_top``, ``pooling``, ``convention`` and ``name``, as in
        :func:`resnet`.

    Returns:
      The model, as :func:`resnet` builds it.
    """
    return resnet(152, num_classes, **kwargs)
