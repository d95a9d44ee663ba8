"""Registry cases for the core layers and combinators."""

import jax.numpy as jnp
from layer_cases import LayerCase

import jaxnets as jn

CASES = [
    LayerCase("dense", lambda: jn.Dense(5), (3, 4)),
    LayerCase("dense_nobias_3d", lambda: jn.Dense(5, use_bias=False), (2, 3, 4)),
    LayerCase("dense_selu", lambda: jn.Dense(6, activation="selu"), (3, 4)),
    LayerCase("flatten", lambda: jn.Flatten(), (2, 3, 4)),
    LayerCase("reshape", lambda: jn.Reshape((2, -1)), (2, 3, 4)),
    *[
        LayerCase(f"act_{name}", (lambda n=name: jn.Activation(n)), (3, 5))
        for name in [
            "identity",
            "sigmoid",
            "tanh",
            "relu",
            "leaky_relu",
            "elu",
            "selu",
            "gelu",
            "silu",
            "softplus",
            "softmax",
            "log_softmax",
        ]
    ],
    LayerCase("dropout", lambda: jn.Dropout(0.3), (4, 6)),
    LayerCase("alpha_dropout", lambda: jn.AlphaDropout(0.2), (4, 6)),
    LayerCase("batchnorm", lambda: jn.BatchNorm(momentum=0.9), (8, 5), grad_atol=1e-3),
    LayerCase("batchnorm_4d", lambda: jn.BatchNorm(), (4, 3, 3, 2), grad_atol=1e-3),
    LayerCase("layernorm", lambda: jn.LayerNorm(), (3, 7), grad_atol=1e-3),
    LayerCase(
        "serial_mlp",
        lambda: jn.serial(jn.Dense(8), jn.Tanh(), jn.Dropout(0.1), jn.Dense(3)),
        (4, 5),
    ),
    LayerCase("residual", lambda: jn.residual(jn.serial(jn.Dense(5), jn.Relu())), (3, 5)),
    LayerCase(
        "residual_projection",
        lambda: jn.residual(jn.Dense(6), shortcut=jn.Dense(6, use_bias=False)),
        (3, 5),
    ),
    LayerCase("parallel", lambda: jn.parallel(jn.Dense(2), jn.Tanh()), ((3, 4), (3, 5))),
    LayerCase(
        "fanout_concat",
        lambda: jn.serial(jn.fan_out(2), jn.parallel(jn.Dense(2), jn.Dense(3)), jn.fan_in_concat()),
        (3, 4),
    ),
    LayerCase(
        "fanout_sum",
        lambda: jn.serial(jn.fan_out(2), jn.parallel(jn.Dense(3), jn.Tanh()), jn.fan_in_sum()),
        (3, 3),
    ),
    LayerCase(
        "branches_sum",
        lambda: jn.branches(jn.Dense(3), jn.serial(jn.Dense(3), jn.Relu()), merge="sum"),
        (2, 4),
    ),
    LayerCase("lambda", lambda: jn.Lambda(lambda x: jnp.sin(x) * 2.0), (3, 2)),
    LayerCase(
        "mlp_model",
        lambda: jn.models.mlp((8, 8), 3, dropout=0.1, batch_norm=True),
        (4, 2, 3),
        grad_atol=1e-3,
    ),
]
