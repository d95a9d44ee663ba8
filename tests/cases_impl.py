"""Registry cases that run each registered implementation by name (``jaxnets._impl``), with
the same layer built with ``impl="reference"`` to compare against. Every implementation of
every op must appear here (``test_implementations.py`` checks it)."""

from layer_cases import LayerCase

import jaxnets as jn


def _residual_block():
    return jn.residual(jn.serial(jn.LayerNorm(), jn.Dense(4), jn.Tanh()))


def _case(id, make, shape, **kwargs):
    """A case for ``make(impl)`` with the named implementation, and its reference."""
    impl = kwargs.pop("impl")
    return LayerCase(id, lambda: make(impl), shape, reference=lambda: make("reference"), **kwargs)


CASES = [
    _case("maxpool2d_tiled", lambda i: jn.MaxPool(2, impl=i), (2, 6, 6, 3), impl="tiled"),
    _case(
        "maxpool2d_tiled_remainder",
        lambda i: jn.MaxPool((2, 3), impl=i),
        (2, 7, 8, 3),
        impl="tiled",
    ),
    _case("maxpool1d_tiled", lambda i: jn.MaxPool((3,), impl=i), (2, 9, 2), impl="tiled"),
    _case(
        "batchnorm_closed_form",
        lambda i: jn.BatchNorm(momentum=0.9, impl=i),
        (8, 5),
        impl="closed_form",
        grad_atol=1e-3,
    ),
    _case(
        "batchnorm_4d_closed_form_no_affine",
        lambda i: jn.BatchNorm(use_scale=False, use_bias=False, impl=i),
        (4, 3, 3, 2),
        impl="closed_form",
        grad_atol=1e-3,
    ),
    _case(
        "rnn_lstm_chunked",
        lambda i: jn.RNN(jn.LSTM(3, impl=i)),
        (2, 11, 3),
        impl="chunked",
        train=False,
    ),
    _case(
        "rnn_lstm_chunked_reverse_last",
        lambda i: jn.RNN(jn.LSTM(3, impl=i), reverse=True, return_sequences=False),
        (2, 4, 2),
        impl="chunked",
        train=False,
    ),
    _case(
        "rnn_lstm_chunked_forward",
        lambda i: jn.RNN(jn.LSTM(3, impl=i), return_carry=True),
        (2, 9, 3),
        impl="chunked_forward",
        train=False,
    ),
    _case(
        "repeat_while_loop",
        lambda i: jn.repeat(_residual_block(), 3, impl=i),
        (2, 4),
        impl="while_loop",
    ),
]
