"""Registry cases of the attention family: MultiHeadAttention, the position layers,
TransformerBlock (encoder, decoder, SwiGLU, cache) and a repeated stack, plus the attention
core's ``xla`` implementation against the reference. (``cudnn`` needs an NVIDIA GPU and
half precision; ``tests/test_attention.py`` compares it with the reference there.)"""

from layer_cases import LayerCase

import jaxnets as jn

_FLOAT32_ONLY = (
    "jax.nn.dot_product_attention computes in float32, so it refuses the float64 inputs of "
    "the finite-difference check; test_implementation_equals_reference compares its "
    "gradients with the reference's in float32"
)


def _impl_case(id, make, shape, impl, **kwargs):
    """A case for the named implementation, with its reference (no float64 gradient check)."""
    return LayerCase(
        id,
        lambda: make(impl),
        shape,
        reference=lambda: make("reference"),
        check_grads=False,
        skip_grads_reason=_FLOAT32_ONLY,
        **kwargs,
    )


CASES = [
    LayerCase("mha_self", lambda: jn.MultiHeadAttention(2), (2, 5, 4)),
    LayerCase(
        "mha_causal_gqa_rotary",
        lambda: jn.MultiHeadAttention(4, 2, num_kv_heads=2, causal=True, rotary=True),
        (2, 5, 6),
    ),
    LayerCase("mha_dropout", lambda: jn.MultiHeadAttention(2, dropout=0.3), (2, 4, 4)),
    LayerCase(
        "mha_cross",
        lambda: jn.MultiHeadAttention(2, 3, cross=True, out_features=5),
        ((2, 5, 4), (2, 3, 6)),
    ),
    LayerCase(
        "mha_cache",
        lambda: jn.MultiHeadAttention(2, causal=True, cache_size=7),
        (2, 3, 4),
    ),
    LayerCase("learned_positions", lambda: jn.LearnedPositions(8), (2, 5, 4)),
    LayerCase(
        "sinusoidal_positions_stateful",
        lambda: jn.SinusoidalPositions(8, stateful=True),
        (2, 5, 4),
    ),
    LayerCase("transformer_block", lambda: jn.TransformerBlock(2, 8), (2, 5, 4)),
    LayerCase(
        "transformer_block_swiglu_dropout",
        lambda: jn.TransformerBlock(
            2, 8, mlp="swiglu", causal=True, dropout=0.2, attention_dropout=0.1
        ),
        (2, 5, 4),
    ),
    LayerCase(
        "transformer_block_decoder",
        lambda: jn.TransformerBlock(2, 8, cross=True, causal=True),
        ((2, 5, 4), (2, 3, 4)),
    ),
    LayerCase(
        "transformer_block_cache",
        lambda: jn.TransformerBlock(2, 8, causal=True, rotary=True, cache_size=6),
        (2, 3, 4),
    ),
    LayerCase(
        "transformer_stack_repeat",
        lambda: jn.repeat(jn.TransformerBlock(2, 8, causal=True), 2),
        (2, 5, 4),
    ),
    _impl_case(
        "mha_xla",
        lambda i: jn.MultiHeadAttention(2, causal=True, impl=i),
        (2, 5, 4),
        "xla",
        train=False,
    ),
    _impl_case(
        "mha_gqa_cross_xla",
        lambda i: jn.MultiHeadAttention(4, 2, num_kv_heads=2, cross=True, impl=i),
        ((2, 5, 4), (2, 3, 6)),
        "xla",
        train=False,
    ),
    _impl_case(
        "transformer_block_xla",
        lambda i: jn.TransformerBlock(2, 8, causal=True, impl=i),
        (2, 5, 4),
        "xla",
    ),
]
