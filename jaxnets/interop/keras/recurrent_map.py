"""Converters of Keras's recurrent layers: SimpleRNN, LSTM, GRU and Bidirectional.

Keras's masked steps hold the previous output (``zero_output_for_mask=False``), except in
a Bidirectional that returns sequences, which zeroes them; the converted layers set
``masked_output`` to match.

Example:
    >>> import numpy as np
    >>> from jaxnets.interop.keras.recurrent_map import recurrent
    >>> w = {"cell": [np.zeros((2, 12)), np.zeros((4, 12)), np.zeros((2, 12))]}
    >>> conv = recurrent({"units": 4}, w.__getitem__, (1, 5, 2), kind="GRU")
    >>> sorted(conv.params), conv.mask
    (['bias', 'kernel', 'recurrent_bias', 'recurrent_kernel'], 'take')
"""

from __future__ import annotations

from typing import Any

import jaxnets as jn
from jaxnets.interop.keras.converted import (
    Converted,
    Weights,
    activation,
    arrays,
    reject,
    unsupported,
)


def cell(cfg: dict, kind: str, weights: Weights, sub: str):
    """A Keras recurrent layer's cell and its params (``sub``: the path to its weights).

    Args:
      cfg: the recurrent layer's config.
      kind: "SimpleRNN", "LSTM" or "GRU".
      weights: the weights getter.
      sub: the path of the cell under the converted layer ("cell", "forward_layer/cell").

    Returns:
      ``(cell, params)``.

    Example:
        >>> import numpy as np
        >>> w = {"cell": [np.zeros((2, 3)), np.zeros((3, 3)), np.zeros(3)]}
        >>> c, p = cell({"units": 3}, "SimpleRNN", w.__getitem__, "cell")
        >>> c.features, sorted(p)
        (3, ['bias', 'kernel', 'recurrent_kernel'])
    """
    reject(cfg, kind, go_backwards=False, stateful=False, return_state=False)
    reject(cfg, kind, dropout=0.0, recurrent_dropout=0.0)
    use_bias = cfg.get("use_bias", True)
    act = activation(cfg, kind)
    options: dict[str, Any] = {"activation": act, "use_bias": use_bias}
    if kind != "SimpleRNN":
        options["recurrent_activation"] = activation(cfg, kind, "recurrent_activation")
    reset_after = kind == "GRU" and cfg.get("reset_after", True)
    w = arrays(weights, sub, 3 if use_bias else 2, cfg, kind)
    params = {"kernel": w[0], "recurrent_kernel": w[1]}
    if use_bias and reset_after:
        params["bias"], params["recurrent_bias"] = w[2][0], w[2][1]
    elif use_bias:
        params["bias"] = w[2]
    if kind == "GRU":
        options["reset_after"] = bool(reset_after)
    make = {"SimpleRNN": jn.SimpleRNN, "LSTM": jn.LSTM, "GRU": jn.GRU}[kind]
    return make(cfg["units"], **options), params


def recurrent(cfg: dict, weights: Weights, shape: tuple, kind: str) -> Converted:
    """A Keras ``SimpleRNN``, ``LSTM`` or ``GRU`` layer as :func:`jaxnets.RNN`.

    Args:
      cfg: the layer's config.
      weights: the weights getter (the cell's are under ``"cell"``).
      shape: the input's shape (unused: the cell's weights carry the sizes).
      kind: the Keras class name.

    Returns:
      The :class:`Converted` layer; it reads a mask and passes it on when it returns
      sequences.

    Example:
        >>> import numpy as np
        >>> w = {"cell": [np.zeros((2, 3)), np.zeros((3, 3)), np.zeros(3)]}
        >>> recurrent({"units": 3}, w.__getitem__, (1, 4, 2), "SimpleRNN").layer.kind
        'SimpleRNN'
    """
    c, params = cell(cfg, kind, weights, "cell")
    sequences = cfg.get("return_sequences", False)
    held = "zero" if cfg.get("zero_output_for_mask", False) else "hold"
    layer = jn.RNN(c, return_sequences=sequences, masked_output=held)
    return Converted(layer, params, {}, "take", sequences)


def bidirectional(cfg: dict, weights: Weights, shape: tuple) -> Converted:
    """A Keras ``Bidirectional`` of a recurrent layer as :func:`jaxnets.Bidirectional`.

    Args:
      cfg: the layer's config (the wrapped ``layer`` and, when saved, ``backward_layer``).
      weights: the weights getter (``forward_layer/cell``, ``backward_layer/cell``).
      shape: the input's shape (unused).

    Returns:
      The :class:`Converted` layer.

    Example:
        >>> import numpy as np
        >>> w = {f"{d}_layer/cell": [np.zeros((2, 3)), np.zeros((3, 3)), np.zeros(3)]
        ...      for d in ("forward", "backward")}
        >>> cfg = {"layer": {"class_name": "SimpleRNN", "config": {"units": 3}}}
        >>> sorted(bidirectional(cfg, w.__getitem__, (1, 4, 2)).params)
        ['backward', 'forward']
    """
    kind = "Bidirectional"
    merge = cfg.get("merge_mode", "concat")
    if merge not in ("concat", "sum", "ave", "mul"):
        raise unsupported(cfg, kind, f"merge_mode={merge!r}")
    inner = cfg["layer"]
    back = cfg.get("backward_layer") or inner
    fwd_cfg = dict(inner["config"])
    back_cfg = {**back["config"], "go_backwards": False}
    for wrapped in (inner, back):
        if wrapped["class_name"] not in ("SimpleRNN", "LSTM", "GRU"):
            raise unsupported(cfg, kind, f"a wrapped {wrapped['class_name']}")
    forward, p_fwd = cell(fwd_cfg, inner["class_name"], weights, "forward_layer/cell")
    backward, p_bwd = cell(back_cfg, back["class_name"], weights, "backward_layer/cell")
    sequences = fwd_cfg.get("return_sequences", False)
    layer = jn.Bidirectional(
        forward, backward, return_sequences=sequences, merge=merge,
        masked_output="zero" if sequences else "hold",
    )  # fmt: skip
    return Converted(layer, {"forward": p_fwd, "backward": p_bwd}, {}, "take", sequences)
