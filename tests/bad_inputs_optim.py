"""Bad inputs to the optimizer and schedule helpers of ``jaxnets.optim``: area "optim"."""

from __future__ import annotations

import jax.numpy as jnp
import optax
from bad_input import Bad

from jaxnets import optim

_PARAMS = {"dense": {"kernel": jnp.ones((2, 2)), "bias": jnp.zeros(2)}}


def _case(name, call, raises, *mentions):
    return Bad("optim", name, call, raises, tuple(mentions))


T, V = TypeError, ValueError
_MAKE = "make_optimizer"

CASES = [
    _case(
        "make_optimizer negative learning rate",
        lambda: optim.make_optimizer("adam", -1e-3),
        V,
        f"{_MAKE}: learning_rate",
        "-0.001",
        "> 0",
    ),
    _case(
        "make_optimizer zero learning rate",
        lambda: optim.make_optimizer("sgd", 0.0),
        V,
        f"{_MAKE}: learning_rate",
        "0.0",
    ),
    _case(
        "make_optimizer learning rate a string",
        lambda: optim.make_optimizer("adam", "1e-3"),
        T,
        f"{_MAKE}: learning_rate",
        "'1e-3'",
    ),
    _case(
        "make_optimizer learning rate nan",
        lambda: optim.make_optimizer("adam", float("nan")),
        V,
        "learning_rate",
        "nan",
    ),
    _case(
        "make_optimizer learning rate an optimizer",
        lambda: optim.make_optimizer("adam", optax.adam(1e-3)),
        T,
        "learning_rate",
        "GradientTransformation",
    ),
    _case(
        "make_optimizer unknown name",
        lambda: optim.make_optimizer("adagrad", 1e-3),
        V,
        f"{_MAKE}: name",
        "'adagrad'",
        "'adam'",
    ),
    _case(
        "make_optimizer name a factory",
        lambda: optim.make_optimizer(optax.adam, 1e-3),
        T,
        f"{_MAKE}: name",
        "a function",
    ),
    _case(
        "make_optimizer negative weight_decay",
        lambda: optim.make_optimizer("adamw", 1e-3, weight_decay=-1e-4),
        V,
        "weight_decay",
        "-0.0001",
    ),
    _case(
        "make_optimizer momentum>1",
        lambda: optim.make_optimizer("momentum", 1e-2, momentum=1.5),
        V,
        "momentum",
        "1.5",
    ),
    _case(
        "make_optimizer clip_norm=0",
        lambda: optim.make_optimizer("adam", 1e-3, clip_norm=0),
        V,
        "clip_norm",
        "0",
    ),
    _case(
        "make_optimizer accumulate_steps=True",
        lambda: optim.make_optimizer("adam", 1e-3, accumulate_steps=True),
        T,
        "accumulate_steps",
        "True",
    ),
    _case(
        "make_optimizer freeze pattern not a string",
        lambda: optim.make_optimizer("adam", 1e-3, freeze_patterns=[1]),
        T,
        "freeze_patterns",
        "1",
    ),
    _case(
        "schedule unknown kind",
        lambda: optim.schedule("cosinus", 0.1, 100),
        V,
        "schedule: kind",
        "'cosinus'",
        "'cosine'",
    ),
    _case(
        "schedule negative learning rate",
        lambda: optim.schedule("cosine", -0.1, 100),
        V,
        "schedule: learning_rate",
        "-0.1",
    ),
    _case(
        "schedule total_steps a float",
        lambda: optim.schedule("cosine", 0.1, 10.5),
        T,
        "schedule: total_steps",
        "10.5",
    ),
    _case(
        "schedule step boundaries merge",
        lambda: optim.schedule("step", 0.1, 10, boundaries=(0.5, 0.52)),
        V,
        "boundaries",
        "step 5",
    ),
    _case(
        "schedule step boundary past the end",
        lambda: optim.schedule("step", 0.1, 100, boundaries=(0.5, 1.5)),
        V,
        "boundaries",
        "1.5",
    ),
    _case(
        "schedule decay_rate=0",
        lambda: optim.schedule("exponential", 0.1, 100, decay_rate=0),
        V,
        "decay_rate",
        "0",
    ),
    _case(
        "schedule warmup_steps<0",
        lambda: optim.schedule("warmup_cosine", 0.1, 100, warmup_steps=-1),
        V,
        "warmup_steps",
        "-1",
    ),
    _case(
        "wrap an optimizer name",
        lambda: optim.wrap("adam", clip_norm=1.0),
        T,
        "wrap: optimizer",
        "'adam'",
        "GradientTransformation",
    ),
    _case(
        "freeze patterns=None",
        lambda: optim.freeze(optax.sgd(0.1), None),
        T,
        "freeze: patterns",
        "None",
    ),
    _case(
        "path_mask pattern an int",
        lambda: optim.path_mask(_PARAMS, [3]),
        T,
        "path_mask: patterns",
        "3",
    ),
    _case(
        "decay_mask exclude an int",
        lambda: optim.decay_mask(_PARAMS, exclude=5),
        T,
        "decay_mask: exclude",
        "5",
    ),
]
