"""Registry cases for the repeat (lax.scan) and remat (jax.checkpoint) wrappers."""

import jax
from layer_cases import LayerCase

import jaxnets as jn

CASES = [
    LayerCase(
        "repeat_residual_mlp",
        lambda: jn.repeat(jn.residual(jn.serial(jn.LayerNorm(), jn.Dense(4), jn.Gelu())), 3),
        (2, 4),
    ),
    LayerCase(
        "repeat_policy_residual_mlp",
        lambda: jn.repeat(
            jn.residual(jn.serial(jn.LayerNorm(), jn.Dense(4), jn.Gelu())),
            3,
            policy=jax.checkpoint_policies.nothing_saveable,
        ),
        (2, 4),
    ),
    LayerCase(
        "repeat_saved_residual_mlp",
        lambda: jn.repeat(jn.residual(jn.serial(jn.Dense(4), jn.Tanh())), 2, remat=False),
        (2, 4),
    ),
    LayerCase(
        "repeat_remat_residual_mlp",
        lambda: jn.repeat(
            jn.remat(jn.residual(jn.serial(jn.Dense(4), jn.Tanh(), jn.Dropout(0.1)))),
            2,
            remat=False,
        ),
        (2, 4),
    ),
]
