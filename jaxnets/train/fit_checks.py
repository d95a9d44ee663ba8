"""What :func:`~jaxnets.train.loop.fit` checks on the host before its first step.

Its arguments (types and ranges, the callbacks' protocol, the keys a monitor may name) and
its data: matching lengths, no empty set, labels that fit the model's outputs and the
loss (class ids in ``[0, classes)``, binary targets in ``[0, 1]``, the shapes), finite
validation inputs. Everything here runs outside ``jit`` on host arrays, before anything
is compiled or written, and each error names the argument (or the split), what was
expected and what came.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jaxnets import losses
from jaxnets.core import Layer
from jaxnets.core.arguments import choice, count, flag, received
from jaxnets.train.callbacks import (
    Checkpointing,
    CSVLogger,
    EarlyStopping,
    JSONLinesLogger,
    LearningRateLogger,
    TensorBoard,
)
from jaxnets.train.objective import check_metrics, check_optimizer
from jaxnets.train.state import TrainState

HOOKS = ("on_train_begin", "on_step_end", "on_epoch_end", "on_train_end")


def check_model(where: str, model: Any) -> None:
    """``model`` must be a Layer or a dict of Layers by part."""
    if isinstance(model, Layer):
        return
    if isinstance(model, Mapping) and model and all(isinstance(m, Layer) for m in model.values()):
        return
    raise TypeError(
        f"{where}: model must be a jaxnets Layer (such as jn.serial(...)) or a dict of "
        f"them by part, got {received(model)}"
    )


def check_callbacks(where: str, callbacks: Any) -> list:
    """``callbacks`` as a list of objects with the hooks of the callback protocol."""
    if any(callable(getattr(callbacks, hook, None)) for hook in HOOKS):
        raise TypeError(
            f"{where}: callbacks must be a list of Callback objects, got the single "
            f"callback {type(callbacks).__name__}; pass callbacks=[...] around it"
        )
    if isinstance(callbacks, str | bytes) or not isinstance(callbacks, Iterable):
        raise TypeError(
            f"{where}: callbacks must be a list of Callback objects, got {received(callbacks)}"
        )
    checked = list(callbacks)
    for i, cb in enumerate(checked):
        if isinstance(cb, type):
            raise TypeError(
                f"{where}: callbacks[{i}] must be a Callback object, got the class "
                f"{cb.__name__}; pass an instance: {cb.__name__}(...)"
            )
        hooks = [hook for hook in HOOKS if hasattr(cb, hook)]
        if not hooks:
            raise TypeError(
                f"{where}: callbacks[{i}] must be a Callback object with one of the methods "
                f"{', '.join(HOOKS)}, got {received(cb)}"
            )
        for hook in hooks:
            if not callable(getattr(cb, hook)):
                raise TypeError(
                    f"{where}: callbacks[{i}].{hook} must be a method, got "
                    f"{received(getattr(cb, hook))}"
                )
    return checked


def check_monitor(where: str, what: str, monitor: str, keys: Iterable[str]) -> None:
    """Raise a ValueError when ``monitor`` is not among the history's ``keys``."""
    held = sorted(keys)
    if monitor not in held:
        hint = " (val_* entries need val_data=)" if monitor.startswith("val_") else ""
        if "val_loss" in held:
            hint = ""
        raise ValueError(
            f"{where}: {what} {monitor!r} is not an entry of the history, which holds "
            f"{held}; monitor one of those{hint}"
        )


def history_keys(
    metric_names: Iterable[str] | None,
    *,
    with_val: bool,
    records_lr: bool,
    callbacks: Sequence[Any],
) -> set[str] | None:
    """The entries every epoch record will hold, or None when they are not known before
    the run (an objective's metrics, or a callback that may add its own)."""
    if metric_names is None:
        return None
    names = ["loss", *metric_names]
    keys = set(names) | {"epoch_time"}
    if with_val:
        keys |= {f"val_{k}" for k in names}
    if records_lr:
        keys.add("lr")
    known = (Checkpointing, CSVLogger, EarlyStopping, JSONLinesLogger, TensorBoard)
    for cb in callbacks:
        if isinstance(cb, LearningRateLogger):
            keys.add(cb.name)
        elif type(cb) not in known:
            return None
    return keys


def model_outputs(model: Layer, params: Any, state: Any, spec: Any) -> Any:
    """The shape and dtype of the model's outputs for a batch of inputs of ``spec`` (a
    pytree of ``ShapeDtypeStruct``) in inference mode (traced, not run)."""

    def forward(p, s, x):
        return model.apply(p, s, x, key=None, train=False)[0]

    return jax.eval_shape(forward, params, state, spec)


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask.reshape(len(mask), -1).any(axis=1)))


def _per_example_size(shape: Sequence[int]) -> int:
    return math.prod(shape[1:])


def check_labels(where: str, name: str, labels: Any, outputs: Any, loss_fn: Callable) -> None:
    """Labels of ``name`` against the model's ``outputs`` spec and the built-in loss.

    Integer class ids for softmax cross-entropy must lie in ``[0, classes)``, one-hot
    targets have the outputs' shape; binary losses take one target per output, in
    ``[0, 1]`` (sigmoid cross-entropy) or ``{-1, 0, 1}`` (hinge); squared error one
    target per output. Custom loss functions are not checked.
    """
    if not hasattr(outputs, "shape"):
        return
    out = tuple(outputs.shape)
    y = np.asarray(labels)
    loss_name = getattr(loss_fn, "__name__", "the loss")
    if y.dtype == np.bool_ or not (
        np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)
    ):
        if loss_fn in _CHECKED:
            raise TypeError(
                f"{where}: {name} labels must be integers or floats for {loss_name}, got dtype "
                f"{y.dtype}"
            )
        return
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        bad = ~np.isfinite(y)
        raise ValueError(
            f"{where}: {name} labels hold {int(bad.sum())} non-finite values (first "
            f"{y[bad].flat[0].item()} at example {_first(bad)})"
        )
    if loss_fn is losses.softmax_cross_entropy:
        _check_class_labels(where, name, y, out)
    elif loss_fn in (losses.sigmoid_binary_cross_entropy, losses.hinge, losses.squared_error):
        if _per_example_size(y.shape) != _per_example_size(out):
            raise ValueError(
                f"{where}: {name} labels must hold one target per output of the model "
                f"(outputs of shape {('N', *out[1:])}) for {loss_name}, got labels of shape "
                f"{y.shape}"
            )
        if loss_fn is losses.sigmoid_binary_cross_entropy:
            bad = (y < 0) | (y > 1)
            expected = "binary targets in [0, 1]"
        elif loss_fn is losses.hinge:
            bad = ~np.isin(y, (-1, 0, 1))
            expected = "-1/+1 (or 0/1) targets"
        else:
            return
        if bad.any():
            raise ValueError(
                f"{where}: {name} labels must be {expected} for {loss_name}, got "
                f"{y[bad].flat[0].item()!r} at example {_first(bad)}"
            )


def _check_class_labels(where: str, name: str, y: np.ndarray, out: tuple) -> None:
    if len(out) < 2:
        raise ValueError(
            f"{where}: softmax_cross_entropy needs outputs with a class axis, the model's "
            f"outputs have shape {out}"
        )
    classes = out[-1]
    if np.issubdtype(y.dtype, np.integer):
        if y.shape[1:] != out[1:-1]:
            raise ValueError(
                f"{where}: {name} labels must be class ids of shape {('N', *out[1:-1])} for "
                f"outputs of shape {('N', *out[1:])}, got labels of shape {y.shape}"
                + ("; flatten them: labels.reshape(-1)" if y.shape[1:] == (1,) else "")
            )
        bad = (y < 0) | (y >= classes)
        if bad.any():
            value = y[bad].flat[0].item()
            raise ValueError(
                f"{where}: {name} labels must be class ids in [0, {classes}) for the model's "
                f"{classes} outputs, got {value} at example {_first(bad)}"
                + ("; -1 is not 'no label': drop those examples" if value == -1 else "")
            )
    elif y.shape[1:] != out[1:]:
        hint = ""
        if y.shape[1:] == out[1:-1]:
            hint = "; class ids must be integers: labels.astype(np.int32)"
        raise ValueError(
            f"{where}: {name} float labels must be one-hot (or soft) targets of the outputs' "
            f"shape {('N', *out[1:])}, got labels of shape {y.shape}{hint}"
        )


_CHECKED = (
    losses.softmax_cross_entropy,
    losses.sigmoid_binary_cross_entropy,
    losses.hinge,
    losses.squared_error,
)


def check_finite_inputs(where: str, name: str, inputs: Any) -> None:
    """Raise a ValueError when floating-point ``inputs`` (an array or a pytree of them)
    hold NaN or infinity."""
    for leaf in jax.tree.leaves(inputs):
        x = np.asarray(leaf)
        if not np.issubdtype(x.dtype, np.floating):
            continue
        bad = ~np.isfinite(x)
        if bad.any():
            raise ValueError(
                f"{where}: {name} inputs hold {int(bad.sum())} non-finite values (first "
                f"{x[bad].flat[0].item()} at example {_first(bad)}); every validation loss "
                f"would be nan: clean or drop those examples"
            )


def check_fit_arguments(
    *,
    model: Any,
    optimizer: Any,
    epochs: Any,
    batch_size: Any,
    eval_batch_size: Any,
    seed: Any,
    train_state: Any,
    progress: Any,
    resume: Any,
    callbacks: Any,
    metrics: Any,
    checkpoint_dir: Any,
    keep_checkpoints: Any,
    checkpoint_monitor: Any,
    checkpoint_mode: Any,
    checkpoint_every_steps: Any,
) -> list:
    """Check :func:`~jaxnets.train.loop.fit`'s arguments (not its data) before any work.

    Returns:
      The callbacks, as a new list.
    """
    where = "fit"
    check_model(where, model)
    if isinstance(optimizer, Mapping):
        if isinstance(model, Layer):
            raise TypeError(
                f"fit: optimizer must be one optax GradientTransformation for one model, got "
                f"a dict by part {sorted(optimizer)}; a dict of optimizers goes with a dict "
                f"of models"
            )
        for part, opt in optimizer.items():
            check_optimizer(opt, where, f"optimizer[{part!r}]")
    else:
        check_optimizer(optimizer, where)
    count(where, "epochs", epochs, minimum=0)
    if batch_size is not None:
        count(where, "batch_size", batch_size)
    count(where, "eval_batch_size", eval_batch_size)
    count(where, "seed", seed, minimum=0)
    flag(where, "progress", progress)
    flag(where, "resume", resume)
    if train_state is not None and not isinstance(train_state, TrainState):
        raise TypeError(
            f"fit: train_state must be a TrainState (from jn.create_train_state or a "
            f"previous fit's result.state), got {received(train_state)}"
        )
    checked = check_callbacks(where, callbacks)
    check_metrics(where, metrics)
    if checkpoint_dir is None:
        for name, value in (
            ("checkpoint_monitor", checkpoint_monitor),
            ("checkpoint_every_steps", checkpoint_every_steps),
        ):
            if value is not None:
                raise ValueError(
                    f"fit: {name}={value!r} does nothing without checkpoint_dir=; pass the "
                    f"folder of the checkpoints too"
                )
        if resume:
            raise ValueError("fit: resume=True needs checkpoint_dir= (where the checkpoints are)")
    else:
        if not isinstance(checkpoint_dir, str | os.PathLike):
            raise TypeError(
                "fit: checkpoint_dir must be a folder's path (a str), "
                f"got {received(checkpoint_dir)}"
            )
        if os.path.exists(checkpoint_dir) and not os.path.isdir(checkpoint_dir):
            raise ValueError(
                f"fit: checkpoint_dir must be a folder, got {os.fspath(checkpoint_dir)!r}, "
                f"which is a file"
            )
    count(where, "keep_checkpoints", keep_checkpoints)
    if checkpoint_monitor is not None and not isinstance(checkpoint_monitor, str):
        raise TypeError(
            f"fit: checkpoint_monitor must be the name of a history entry such as "
            f"'val_loss', got {received(checkpoint_monitor)}"
        )
    choice(where, "checkpoint_mode", checkpoint_mode, ("min", "max"))
    if checkpoint_every_steps is not None:
        count(where, "checkpoint_every_steps", checkpoint_every_steps)
    return checked
