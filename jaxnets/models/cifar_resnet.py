"""The CIFAR-10 ResNets of He et al. (2016): ResNet-20, 32, 44, 56 and 110."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import jax
import jax.numpy as jnp

from jaxnets.activations import Relu, check_name
from jaxnets.core import Layer, layer_error, residual, serial, stateless
from jaxnets.core.arguments import count
from jaxnets.models._common import check_top, conv_bn, head, model_serial

#: He et al. (2015)'s initialisation: a zero-mean Gaussian of variance 2 / fan-in.
HE_GAUSSIAN = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")


class _ConvBNOptions(TypedDict):
    use_bias: bool
    momentum: float
    epsilon: float
    kernel_init: Callable


_OPTS: _ConvBNOptions = {
    "use_bias": False,
    "momentum": 0.9,
    "epsilon": 1e-5,
    "kernel_init": HE_GAUSSIAN,
}


def pad_shortcut(features: int, strides: int = 2, name: str | None = None) -> Layer:
    """The parameter-free "option A" shortcut: keep every ``strides``-th pixel and append
    zero channels up to ``features`` (He et al. 2016, section 4.2).

    Args:
      features: the output channels, at least the input's.
      strides: the subsampling step along height and width.
      name: the key of the layer in its parent.

    Returns:
      The layer (no params): ``(N, H, W, C)`` in, ``(N, ceil(H / strides),
      ceil(W / strides), features)`` out.
    """
    kind = "PadShortcut"
    features = count(kind, "features", features)
    strides = count(kind, "strides", strides)
    check_name(kind, name)

    def fn(x):
        extra = features - x.shape[-1]
        return jnp.pad(x[:, ::strides, ::strides, :], ((0, 0), (0, 0), (0, 0), (0, extra)))

    def check(spec):
        if len(spec.shape) != 4 or spec.shape[-1] > features:
            raise layer_error(
                kind,
                f"expected (batch, height, width, channels <= {features}), got shape "
                f"{tuple(spec.shape)}",
            )

    return stateless(kind, fn, name=name, check=check)


def cifar_resnet(
    depth: int,
    num_classes: int = 10,
    *,
    include_top: bool = True,
    pooling: str | None = None,
    name: str | None = None,
) -> Layer:
    """The ResNet of He, Zhang, Ren & Sun (2016, "Deep residual learning for image
    recognition", section 4.2) for 32x32 CIFAR images: ``depth = 6n + 2``.

    ``stem``: a 3x3 convolution with 16 filters, ``bn`` and ``relu``; then three stages
    ``stage1``..``stage3`` of ``n`` basic blocks (two 3x3 convolutions) with 16, 32 and 64
    filters; the first block of stages 2 and 3 halves the map with stride 2. Shortcuts
    are option A of the paper: the identity, or where the shape changes a parameter-free
    subsampling by 2 with zero channels appended (:func:`pad_shortcut`). Each block is
    ``params["stage2"]["block1"]["main"]`` (``conv1``, ``bn1``, ``conv2``, ``bn2``),
    followed by its ReLU ``block1_relu``. Then global average ``pool`` and ``logits``.

    Convolutions have no bias and He-Gaussian kernels (the paper's initialisation); 3x3
    convolutions pad one pixel on each side; BatchNorm epsilon 1e-5, momentum 0.9.
    Parameters (10 classes): ResNet-20 269,722, ResNet-32 464,154, ResNet-44 658,586,
    ResNet-56 853,018, ResNet-110 1,727,962 (Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M);
    plus the BatchNorm statistics in state (1,376 for ResNet-20). Any input size works
    (the stride-2 stages round up).

    Args:
      depth: the number of weighted layers, ``6n + 2`` (20, 32, 44, 56, 110...).
      num_classes: the number of logits (with ``include_top``).
      include_top: end with the global average ``pool`` and the ``logits`` Dense layer.
      pooling: without the top, ``"avg"`` or ``"max"`` global pooling, or None to keep the
        8x8x64 feature map (for 32x32 inputs); ignored with the top.
      name: the model's name (default ``resnet<depth>``).

    Returns:
      The model: images ``(N, H, W, C)`` in, logits ``(N, num_classes)`` out (or the
      features chosen by ``pooling``).

    Example:
        >>> import jaxnets as jn
        >>> out, params, state = jn.shape_tree(jn.models.resnet20(), (2, 32, 32, 3))
        >>> out.shape, jn.count_params(params), jn.count_params(state)
        ((2, 10), 269722, 1376)
    """
    expected = "6n + 2 (20, 32, 44, 56, 110)"
    try:
        depth = count("cifar_resnet", "depth", depth, minimum=8)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{error}; depth must be {expected}") from None
    if (depth - 2) % 6:
        raise ValueError(f"cifar_resnet: depth must be {expected}, got {depth!r}")
    n = (depth - 2) // 6
    check_name("cifar_resnet", name)
    name = name or f"resnet{depth}"
    check_top(name, num_classes, include_top, pooling)
    stem = serial(*conv_bn("", 16, 3, 1, 1, **_OPTS))
    stages = []
    channels = 16
    for s, width in enumerate((16, 32, 64), start=1):
        layers = []
        for b in range(1, n + 1):
            strides = 2 if b == 1 and s > 1 else 1
            main = serial(
                *conv_bn("1", width, 3, strides, 1, **_OPTS),
                *conv_bn("2", width, 3, 1, 1, relu=False, **_OPTS),
            )
            shortcut = pad_shortcut(width, strides) if channels != width or strides != 1 else None
            layers += [(f"block{b}", residual(main, shortcut)), (f"block{b}_relu", Relu())]
            channels = width
        stages.append((f"stage{s}", serial(*layers)))
    return model_serial(
        name, 1, ("stem", stem), *stages, *head(num_classes, include_top, pooling, name)
    )


def resnet20(num_classes: int = 10, **kwargs) -> Layer:
    """CIFAR ResNet-20 (269,722 parameters); see :func:`cifar_resnet`.

    Args:
      num_classes: the number of logits.
      **kwargs: ``include_top``, ``pooling`` and ``name``, as in :func:`cifar_resnet`.

    Returns:
      The model, as :func:`cifar_resnet` builds it.
    """
    return cifar_resnet(20, num_classes, **kwargs)


def resnet32(num_classes: int = 10, **kwargs) -> Layer:
    """CIFAR ResNet-32 (464,154 parameters); see :func:`cifar_resnet`.

    Args:
      num_classes: the number of logits.
      **kwargs: ``include_top``, ``pooling`` and ``name``, as in :func:`cifar_resnet`.

    Returns:
      The model, as :func:`cifar_resnet` builds it.
    """
    return cifar_resnet(32, num_classes, **kwargs)


def resnet44(num_classes: int = 10, **kwargs) -> Layer:
    """CIFAR ResNet-44 (658,586 parameters); see :func:`cifar_resnet`.

    Args:
      num_classes: the number of logits.
      **kwargs: ``include_top``, ``pooling`` and ``name``, as in :func:`cifar_resnet`.

    Returns:
      The model, as :func:`cifar_resnet` builds it.
    """
    return cifar_resnet(44, num_classes, **kwargs)


def resnet56(num_classes: int = 10, **kwargs) -> Layer:
    """CIFAR ResNet-56 (853,018 parameters); see :func:`cifar_resnet`.

    Args:
      num_classes: the number of logits.
      **kwargs: ``include_top``, ``pooling`` and ``name``, as in :func:`cifar_resnet`.

    Returns:
      The model, as :func:`cifar_resnet` builds it.
    """
    return cifar_resnet(56, num_classes, **kwargs)


def resnet110(num_classes: int = 10, **kwargs) -> Layer:
    """CIFAR ResNet-110 (1,727,962 parameters); see :func:`cifar_resnet`.

    Args:
      num_classes: the number of logits.
      **kwargs: ``include_top``, ``pooling`` and ``name``, as in :func:`cifar_resnet`.

    Returns:
      The model, as :func:`cifar_resnet` builds it.
    """
    return cifar_resnet(110, num_classes, **kwargs)
