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
from jaxnets.train.loop import FitResult, History, evaluate, fit
from jaxnets.train.precision import Policy
from jaxnets.train.state import TrainState, create_train_state
from jaxnets.train.step import make_eval_step, make_predict, make_train_step

__all__ = [
    "CSVLogger",
    "Callback",
    "CheckpointError",
    "CheckpointManager",
    "Checkpointing",
    "EarlyStopping",
    "FitResult",
    "History",
    "JSONLinesLogger",
    "LearningRateLogger",
    "Policy",
    "Run",
    "TensorBoard",
    "TrainState",
    "create_train_state",
    "enable_compilation_cache",
    "evaluate",
    "fit",
    "make_eval_step",
    "make_predict",
    "make_train_step",
    "restore_checkpoint",
    "save_checkpoint",
]
