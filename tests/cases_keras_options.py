"""Registry cases for the layer options that Keras models need (issue 16): masked steps
that hold the previous output, Masking and Embedding(mask_zero=True) feeding a recurrent
layer, GRU's reset-before form, cells without biases or with other gate activations,
LayerNorm over several axes, ConvTranspose's output_padding and convolutions whose int
kernel size means their own rank. ``tests/test_interop_keras_models.py`` compares them
with Keras."""

import jax
from layer_cases import LayerCase

import jaxnets as jn

CASES = [
    LayerCase(
        "rnn_lstm_mask_hold",
        lambda: jn.RNN(jn.LSTM(3), masked_output="hold"),
        ((2, 5, 2), (2, 5)),
        train=False,
    ),
    LayerCase(
        "masking_gru_reset_before",
        lambda: jn.serial(jn.Masking(), jn.RNN(jn.GRU(3, reset_after=False), masked_output="hold")),
        (2, 4, 2),
        train=False,
    ),
    LayerCase(
        "embedding_mask_zero_lstm",
        lambda: jn.serial(
            jn.Embedding(6, 4, mask_zero=True),
            jn.RNN(jn.LSTM(3, use_bias=False, recurrent_activation=jax.nn.hard_sigmoid)),
        ),
        (2, 5),
        int_input_max=6,
        train=False,
    ),
    LayerCase(
        "bidirectional_nobias_hold",
        lambda: jn.Bidirectional(
            jn.SimpleRNN(2, use_bias=False),
            jn.GRU(2, use_bias=False, activation="relu"),
            masked_output="hold",
        ),
        ((2, 5, 2), (2, 5)),
        train=False,
    ),
    LayerCase("layernorm_axes", lambda: jn.LayerNorm(1e-3, axis=(1, 2)), (2, 3, 4)),
    LayerCase(
        "conv_transpose_output_padding",
        lambda: jn.ConvTranspose(3, 3, strides=2, output_padding=1),
        (2, 3, 3, 2),
    ),
    LayerCase(
        "conv_transpose1d_valid_output_padding",
        lambda: jn.ConvTranspose(2, 3, strides=2, padding="VALID", output_padding=1, rank=1),
        (2, 4, 3),
    ),
    LayerCase("conv1d_rank", lambda: jn.Conv(4, 3, rank=1), (2, 6, 3)),
    LayerCase("conv3d_rank", lambda: jn.Conv(2, 2, rank=3, padding="VALID"), (1, 3, 3, 3, 2)),
    LayerCase("depthwise1d_rank", lambda: jn.DepthwiseConv(3, rank=1), (2, 6, 2)),
]
