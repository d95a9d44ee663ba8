"""Feed-forward networks: the perceptron and the multi-layer perceptron."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax

from jaxnets.activations import Activation, check_name, resolve
from jaxnets.core import Layer, serial
from jaxnets.core.arguments import count, flag, number
from jaxnets.layers import AlphaDropout, BatchNorm, Dense, Dropout, Flatten
from jaxnets.models._common import widths


def perceptron(num_classes: int = 1, *, name: str | None = "perceptron") -> Layer:
    """A single linear layer on the flattened input (Rosenblatt's perceptron as logits).

    Args:
      num_classes: the number of logits; 1 gives one logit for binary classification.
      name: the model's name.

    Returns:
      The model: inputs ``(N, ...)`` in (flattened), logits ``(N, num_classes)`` out.

    Example:
        >>> import jax, jaxnets as jn
        >>> spec, params, _ = jn.models.perceptron().init(jax.random.key(0), (4, 2))
        >>> spec.shape
        (4, 1)
    """
    count("perceptron", "num_classes", num_classes)
    check_name("perceptron", name)
    return serial(Flatten(), ("logits", Dense(num_classes)), name=name)


def mlp(
    hidden: Sequence[int] = (256, 256),
    num_classes: int = 10,
    *,
    activation: str | Callable = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
    name: str | None = "mlp",
) -> Layer:
    """A multi-layer perceptron: Flatten, then ``Dense -> [BatchNorm] -> activation ->
    [Dropout]`` per hidden size, then a ``logits`` Dense layer.

    Hidden layers are named ``hidden_0``, ``hidden_1``... and each is a ``serial`` of
    ``dense``, ``norm``, ``act`` and ``dropout``.

    Args:
      hidden: the width of each hidden layer, in order (empty: a linear model).
      num_classes: the number of logits.
      activation: the activation name or function of the hidden layers. ``"selu"`` also
        makes the kernels LeCun-normal and the dropout AlphaDropout, as self-normalising
        networks need (Klambauer et al. 2017).
      dropout: the dropout rate after each activation (0: no dropout layer).
      batch_norm: put a BatchNorm between each hidden Dense layer and its activation.
      name: the model's name.

    Returns:
      The model: inputs ``(N, ...)`` in (flattened), logits ``(N, num_classes)`` out.

    Example:
        >>> import jax, jaxnets as jn
        >>> _, params, _ = jn.models.mlp((32,), 10).init(jax.random.key(0), (1, 64))
        >>> sorted(params)
        ['hidden_0', 'logits']
    """
    where = "mlp"
    hidden = widths(where, "hidden", hidden)
    count(where, "num_classes", num_classes)
    resolve(where, activation)
    dropout = number(where, "dropout", dropout, low=0.0, high=1.0, high_open=True)
    flag(where, "batch_norm", batch_norm)
    check_name(where, name)
    selu = activation == "selu"
    layers: list = [Flatten()]
    for i, width in enumerate(hidden):
        kernel_init = jax.nn.initializers.lecun_normal() if selu else None
        block: list = [("dense", Dense(width, kernel_init=kernel_init))]
        if batch_norm:
            block.append(("norm", BatchNorm()))
        block.append(("act", Activation(activation)))
        if dropout > 0:
            block.append(("dropout", (AlphaDropout if selu else Dropout)(dropout)))
        layers.append((f"hidden_{i}", serial(*block)))
    layers.append(("logits", Dense(num_classes)))
    return serial(*layers, name=name)
