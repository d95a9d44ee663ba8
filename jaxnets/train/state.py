"""The training state: one pytree that a jitted step maps to the next."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from jaxnets.core import Layer, SpecLike, init_model


class TrainState(NamedTuple):
    """Everything a training run carries from step to step.

    ``key`` is the run's base PRNG key; step ``i`` uses ``fold_in(key, i)``, so the same
    seed gives the same numbers and a resumed run continues the same random stream.
    ``step`` counts the batches trained on; it is a host ``numpy.int32`` (a device
    scalar would cost a dispatch per step to increment), and any integer is accepted.
    """

    step: Any
    params: Any
    state: Any
    opt_state: Any
    key: jax.Array


def create_train_state(
    model: Layer,
    optimizer: optax.GradientTransformation,
    input_spec: SpecLike,
    *,
    seed: int = 0,
) -> TrainState:
    """Initialise the model from ``input_spec`` (shapes only) and the optimizer.

    Example:
        >>> import optax, jaxnets as jn
        >>> ts = jn.create_train_state(jn.Dense(2), optax.sgd(0.1), (4, 3), seed=0)
        >>> int(ts.step), ts.params["kernel"].shape
        (0, (3, 2))
    """
    init_key, run_key = jax.random.split(jax.random.key(seed))
    _, params, state = init_model(model, init_key, input_spec)
    return TrainState(
        step=np.int32(0),
        params=params,
        state=state,
        opt_state=optimizer.init(params),
        key=run_key,
    )
