"""Registry cases for the recurrent layers and Embedding (tiny sizes; gradients through time).

The recurrent layers do not depend on the mode, so their cases run with ``train=False``
only (the generic tests would repeat every check for ``train=True``). SimpleRNN is covered
as the backward cell of ``bidirectional_last``.
"""

from layer_cases import LayerCase

import jaxnets as jn

CASES = [
    LayerCase("rnn_lstm", lambda: jn.RNN(jn.LSTM(3)), (2, 4, 3), train=False),
    LayerCase(
        "rnn_gru_reverse_unroll",
        lambda: jn.RNN(jn.GRU(3), reverse=True, unroll=2),
        (2, 5, 2),
        train=False,
    ),
    # (x, mask) with a float mask: steps with mask <= 0 are padding (about half of them here)
    LayerCase("rnn_lstm_mask", lambda: jn.RNN(jn.LSTM(3)), ((2, 5, 2), (2, 5)), train=False),
    LayerCase(
        "rnn_gru_mask_last_carry",
        lambda: jn.RNN(jn.GRU(3), return_sequences=False, return_carry=True),
        ((2, 5, 2), (2, 5)),
        train=False,
    ),
    LayerCase(
        "rnn_lstm_stateful", lambda: jn.RNN(jn.LSTM(3), stateful=True), (2, 4, 2), train=False
    ),
    LayerCase(
        "stacked_mask_last",
        lambda: jn.StackedRNN([jn.LSTM(3), jn.GRU(3)], return_sequences=False),
        ((2, 5, 2), (2, 5)),
        train=False,
    ),
    LayerCase(
        "bidirectional_gru_mask_sum",
        lambda: jn.Bidirectional(jn.GRU(3), merge="sum"),
        ((2, 5, 2), (2, 5)),
        train=False,
    ),
    LayerCase(
        "bidirectional_last",
        lambda: jn.Bidirectional(jn.LSTM(2), jn.SimpleRNN(3), return_sequences=False),
        (2, 4, 3),
        train=False,
    ),
    LayerCase("embedding", lambda: jn.Embedding(7, 3), (2, 5), int_input_max=7, train=False),
    LayerCase(
        "embedding_lstm",
        lambda: jn.serial(jn.Embedding(6, 4), jn.RNN(jn.LSTM(3)), jn.Dense(6)),
        (2, 5),
        int_input_max=6,
        train=False,
    ),
]
