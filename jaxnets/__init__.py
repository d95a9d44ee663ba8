"""jaxnets: a functional neural-network library for JAX.

Layers are pure ``(init, apply)`` pairs with explicit parameter pytrees; networks are
built with combinators and trained with jitted steps, ``jax.grad`` and optax.

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> model = jn.serial(jn.Dense(16), jn.Relu(), jn.Dense(3))
    >>> _, params, state = model.init(jax.random.key(0), (2, 4))
    >>> model.apply(params, state, jnp.ones((2, 4)), train=False)[0].shape
    (2, 3)
"""

from jaxnets import activations, data, losses, models
from jaxnets.activations import (
    Activation,
    Elu,
    Gelu,
    Identity,
    LeakyRelu,
    LogSoftmax,
    Relu,
    Selu,
    Sigmoid,
    Silu,
    Softmax,
    Softplus,
    Tanh,
)
from jaxnets.core import (
    Layer,
    LayerError,
    LayerTypeError,
    Lambda,
    as_spec,
    branches,
    check_tree_matches,
    count_params,
    fan_in_concat,
    fan_in_sum,
    fan_out,
    init_model,
    named,
    parallel,
    residual,
    serial,
    shape_tree,
    stateless,
)
from jaxnets.layers import AlphaDropout, BatchNorm, Dense, Dropout, Flatten, LayerNorm, Reshape
from jaxnets.summary import summary
from jaxnets.train import (
    FitResult,
    TrainState,
    create_train_state,
    evaluate,
    fit,
    make_eval_step,
    make_predict,
    make_train_step,
)

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "AlphaDropout",
    "BatchNorm",
    "Dense",
    "Dropout",
    "Elu",
    "FitResult",
    "Flatten",
    "Gelu",
    "Identity",
    "Lambda",
    "Layer",
    "LayerError",
    "LayerNorm",
    "LayerTypeError",
    "LeakyRelu",
    "LogSoftmax",
    "Relu",
    "Reshape",
    "Selu",
    "Sigmoid",
    "Silu",
    "Softmax",
    "Softplus",
    "Tanh",
    "TrainState",
    "activations",
    "as_spec",
    "branches",
    "check_tree_matches",
    "count_params",
    "create_train_state",
    "data",
    "evaluate",
    "fan_in_concat",
    "fan_in_sum",
    "fan_out",
    "fit",
    "init_model",
    "losses",
    "make_eval_step",
    "make_predict",
    "make_train_step",
    "models",
    "named",
    "parallel",
    "residual",
    "serial",
    "shape_tree",
    "stateless",
    "summary",
]
