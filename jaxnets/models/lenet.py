"""LeNet-5, the convolutional network of LeCun et al. (1998)."""

from __future__ import annotations

from collections.abc import Callable

from jaxnets.activations import check_name, resolve
from jaxnets.core import Layer
from jaxnets.layers import AvgPool, Conv, Dense, Flatten
from jaxnets.models._common import check_top, head, model_serial


def lenet5(
    num_classes: int = 10,
    *,
    activation: str | Callable = "tanh",
    include_top: bool = True,
    pooling: str | None = None,
    name: str = "lenet5",
) -> Layer:
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied
    to document recognition"), in its common modern form.

    ``conv1`` (6 filters 5x5, SAME) -> ``pool1`` (2x2 average) -> ``conv2`` (16 filters
    5x5, VALID) -> ``pool2`` -> ``flatten`` -> ``fc1`` (120) -> ``fc2`` (84) -> ``logits``,
    with ``activation`` (tanh, as the paper) after every convolution and hidden layer.
    The SAME padding of ``conv1`` on 28x28 digits plays the part of the paper's 32x32
    padded input, so on 28x28x1 inputs the network has the paper's sizes and
    61,706 parameters for 10 classes. Departures from the paper: ``conv2`` sees all six
    maps (the paper's C3 used a partial connection table), the output is a Dense layer
    of logits instead of Gaussian RBF units, and the activation is plain tanh.

    Inputs need at least 12x12 pixels.

    Args:
      num_classes: the number of logits (with ``include_top``).
      activation: the activation name or function after each convolution and hidden layer.
      include_top: end with ``flatten``, ``fc1``, ``fc2`` and ``logits``.
      pooling: without the top, ``"avg"`` or ``"max"`` global pooling of ``pool2``'s
        feature map, or None to keep the map; ignored with the top.
      name: the model's name.

    Returns:
      The model: images ``(N, H, W, C)`` in, logits ``(N, num_classes)`` out (or the
      features chosen by ``pooling``).

    Example:
        >>> import jax, jaxnets as jn
        >>> out, params, state = jn.shape_tree(jn.models.lenet5(), (2, 28, 28, 1))
        >>> out.shape, jn.count_params(params), state
        ((2, 10), 61706, {})
    """
    check_name("lenet5", name)
    check_top(name, num_classes, include_top, pooling)
    resolve(name, activation)
    features = [
        ("conv1", Conv(6, 5, padding="SAME", activation=activation)),
        ("pool1", AvgPool(2)),
        ("conv2", Conv(16, 5, padding="VALID", activation=activation)),
        ("pool2", AvgPool(2)),
    ]
    if include_top:
        top = [
            ("flatten", Flatten()),
            ("fc1", Dense(120, activation=activation)),
            ("fc2", Dense(84, activation=activation)),
            ("logits", Dense(num_classes)),
        ]
    else:
        top = head(num_classes, False, pooling, name)
    return model_serial(name, 12, *features, *top)
