"""Registry cases for the repeat (lax.scan) and remat (jax.checkpoint) wrappers."""

from layer_cases import LayerCase

import jaxnets as jn

CASES = [
    LayerCase(
        "repeat_remat_residual_mlp",
        lambda: jn.repeat(
            jn.remat(jn.residual(jn.serial(jn.Dense(4), jn.Tanh(), jn.Dropout(0.1)))), 2
        ),
        (2, 4),
    ),
]
