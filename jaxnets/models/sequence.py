"""Sequence classification with an LSTM: images read row by row (row-by-row MNIST)."""

from __future__ import annotations

from jaxnets.activations import check_name
from jaxnets.core import Layer, serial
from jaxnets.core.arguments import count, flag, number
from jaxnets.data.augment import Augment
from jaxnets.layers import LSTM, RNN, Bidirectional, Dense, Dropout, Reshape


def lstm_classifier(
    rows: int = 8,
    row_features: int = 8,
    num_classes: int = 10,
    *,
    hidden: int = 128,
    bidirectional: bool = True,
    dropout: float = 0.2,
    shift: int = 1,
    name: str | None = "lstm_classifier",
) -> Layer:
    """Read each image as ``rows`` time steps of ``row_features`` pixels with an LSTM and
    classify from its last output.

    ``[Augment(shift)] -> Reshape -> LSTM(hidden) -> [Dropout] -> Dense(num_classes)``. For
    the 8x8 digits ``(N, 8, 8, 1)`` the defaults read 8 steps of 8 pixels: the small
    version of the classic row-by-row MNIST task (28 steps of 28).

    Args:
      rows: the time steps each example is read as.
      row_features: the values per step; ``rows * row_features`` is the example's size.
      num_classes: the number of logits.
      hidden: the LSTM's width (per direction).
      bidirectional: add a second LSTM that reads the rows bottom-up; the two last
        outputs are concatenated.
      dropout: the dropout rate before the logits (0: none).
      shift: moves training images by up to that many pixels at random (0: off; the
        identity in inference; training needs a key, which ``jaxnets.fit`` gives).
      name: the model's name.

    Returns:
      The model: examples ``(N, ...)`` in (images ``(N, H, W, C)`` when ``shift`` > 0),
      logits ``(N, num_classes)`` out.

    Example:
        >>> import jax, jaxnets as jn
        >>> model = jn.models.lstm_classifier(hidden=16)
        >>> spec, params, _ = model.init(jax.random.key(0), (5, 8, 8, 1))
        >>> spec.shape, sorted(params), sorted(params["lstm"])
        ((5, 10), ['logits', 'lstm'], ['backward', 'forward'])
    """
    where = "lstm_classifier"
    for what, value in (("rows", rows), ("row_features", row_features), ("hidden", hidden)):
        count(where, what, value)
    count(where, "num_classes", num_classes)
    flag(where, "bidirectional", bidirectional)
    dropout = number(where, "dropout", dropout, low=0.0, high=1.0, high_open=True)
    shift = count(where, "shift", shift, minimum=0)
    check_name(where, name)
    rnn = (
        Bidirectional(LSTM(hidden), return_sequences=False)
        if bidirectional
        else RNN(LSTM(hidden), return_sequences=False)
    )
    layers: list = [("shift", Augment(crop_padding=shift))] if shift else []
    layers += [("rows", Reshape((rows, row_features))), ("lstm", rnn)]
    if dropout:
        layers.append(("dropout", Dropout(dropout)))
    layers.append(("logits", Dense(num_classes)))
    return serial(*layers, name=name)
