"""Training: the state pytree, jitted steps and the loop around them."""

from jaxnets.train.loop import FitResult, History, evaluate, fit
from jaxnets.train.state import TrainState, create_train_state
from jaxnets.train.step import make_eval_step, make_predict, make_train_step

__all__ = [
    "FitResult",
    "History",
    "TrainState",
    "create_train_state",
    "evaluate",
    "fit",
    "make_eval_step",
    "make_predict",
    "make_train_step",
]
