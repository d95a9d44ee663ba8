"""Training: the state pytree, jitted steps, the loop, callbacks, checkpoints, precision."""

from jaxnets.train.cache import enable_compilation_cache
from jaxnets.train.callbacks import (
    Callback,
    Checkpointing,
    CSVLogger,
    EarlyStopping,
    JSONLinesLogger,
    LearningRateLogger,
    Run,
    TensorBoard,
)
from jaxnets.train.checkpoint import (
    CheckpointError,
    CheckpointManager,
    restore_checkpoint,
    save_checkpoint,
)
from jaxnets.train.eval_step import EvalStep, make_eval_step, make_predict
from jaxnets.train.loop import FitResult, History, evaluate, fit
from jaxnets.train.objective import Objective, Update, supervised
from jaxnets.train.precision import Policy
from jaxnets.train.state import TrainState, create_train_state
from jaxnets.train.step import TrainStep, make_train_step

__all__ = [
    "CSVLogger",
    "Callback",
    "CheckpointError",
    "CheckpointManager",
    "Checkpointing",
    "EarlyStopping",
    "EvalStep",
    "FitResult",
    "History",
    "JSONLinesLogger",
    "LearningRateLogger",
    "Objective",
    "Policy",
    "Run",
    "TensorBoard",
    "TrainState",
    "TrainStep",
    "Update",
    "create_train_state",
    "enable_compilation_cache",
    "evaluate",
    "fit",
    "make_eval_step",
    "make_predict",
    "make_train_step",
    "restore_checkpoint",
    "save_checkpoint",
    "supervised",
]
