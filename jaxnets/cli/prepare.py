"""The model and the data of a run's config, and the checks that need them.

:func:`prepare` loads the data set, holds out the validation split, builds the model and
resizes the images; :func:`check_training` refuses a batch larger than the training
split, a ``--freeze`` that matches no parameter (or all of them) and, on resume, fewer
epochs than the run has done. None of them writes anything.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from jaxnets.cli.errors import option_error
from jaxnets.cli.options import checkpoint_steps
from jaxnets.cli.registry import build_model, load_dataset, model_error, resize_images

if TYPE_CHECKING:
    from jaxnets.core import Layer
    from jaxnets.data import ArrayDataset


class Prepared(NamedTuple):
    """What a run trains and evaluates on: ``val`` is None with ``--val-split 0``."""

    model: Layer
    train: ArrayDataset
    val: ArrayDataset | None
    test: ArrayDataset
    num_classes: int
    resize: int | None
    validation: dict[str, Any]


def _hold_out(config: Mapping[str, Any], train: ArrayDataset):
    """``(train, val, description)``: the seeded ``val_split`` of ``train``."""
    from jaxnets.data.split import validation_split

    share = config["val_split"]
    if share == 0:
        return train, None, {"source": "none", "examples": 0}
    n_val = round(share * len(train))
    if n_val < 1 or n_val >= len(train):
        raise option_error(
            "--val-split",
            f"{share:g} of the {len(train)} training examples holds out {n_val}; give a "
            f"share that leaves at least one example on each side",
        )
    rest, val = validation_split(train, share, seed=config["seed"])
    return rest, val, {"source": "val_split", "val_split": share, "examples": len(val)}


def prepare(config: Mapping[str, Any], *, val_split_given: bool = True) -> Prepared:
    """Load the data set of ``config``, split off validation, build and fit the model.

    The images are resized when ``resize`` is N > 0, or when it is ``auto`` and the
    model needs larger images (a notice is printed unless ``quiet``).

    Args:
      config: a run's options (``model``, ``model_arg``, ``dataset``, ``data_dir``,
        ``resize``, ``val_split``, ``seed``, ``batch_size``, ``quiet``).
      val_split_given: whether ``--val-split`` was typed (refused for a data set with
        its own validation set).

    Returns:
      A :class:`Prepared`.

    Raises:
      UsageError: naming the option that does not fit the data or the model.
    """
    parts = load_dataset(config["dataset"], config.get("data_dir"))
    train, val, test = parts
    if val is None:
        train, val, validation = _hold_out(config, train)
    elif val_split_given:
        raise option_error(
            "--val-split",
            f"--dataset {config['dataset']} has its own validation set; drop --val-split",
        )
    else:
        validation = {"source": "dataset", "examples": len(val)}
    labelled = [d.labels for d in (train, val, test) if d is not None]
    num_classes = int(max(int(y.max()) for y in labelled)) + 1
    model = build_model(config["model"], num_classes, config["model_arg"])
    size = None
    native = (config["batch_size"], *train.inputs.shape[1:])
    if config["resize"] == "auto":
        if train.inputs.ndim == 4 and model_error(model, native) is not None:
            size = 28 if train.inputs.shape[-1] == 1 else 32
            if not config.get("quiet"):
                print(
                    f"{config['model']} does not take {train.inputs.shape[1:3]} images; "
                    f"resizing to {size}x{size} (bilinear; --resize N to choose, --resize 0 "
                    f"for none)"
                )
    elif config["resize"] > 0:
        size = int(config["resize"])
    if size:
        train, test = resize_images(train, size), resize_images(test, size)
        val = None if val is None else resize_images(val, size)
    spec = (config["batch_size"], *train.inputs.shape[1:])
    problem = model_error(model, spec)
    if problem is not None:
        raise option_error(
            "--model",
            f"{config['model']} does not take the inputs of --dataset {config['dataset']} "
            f"(shape {tuple(train.inputs.shape[1:])}): {problem}",
        )
    return Prepared(model, train, val, test, num_classes, size, validation)


def _check_freeze(config: Mapping[str, Any], model: Layer, spec: tuple[int, ...]) -> None:
    """Refuse a ``--freeze`` glob that matches no parameter path, or globs freezing all."""
    import fnmatch

    import jax

    from jaxnets.core import shape_tree
    from jaxnets.core.trees import path_str

    _, params, _ = shape_tree(model, spec)
    paths = [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    for pattern in config["freeze"]:
        if not any(fnmatch.fnmatchcase(p, pattern) for p in paths):
            shown = ", ".join(paths[:6]) + (", ..." if len(paths) > 6 else "")
            raise option_error(
                "--freeze", f"{pattern!r} matches no parameter of {config['model']} ({shown})"
            )
    if paths and all(any(fnmatch.fnmatchcase(p, g) for g in config["freeze"]) for p in paths):
        raise option_error(
            "--freeze",
            f"{config['freeze']} freezes every parameter of {config['model']}; nothing would train",
        )


def check_training(config: Mapping[str, Any], prepared: Prepared) -> int:
    """The checks of a ``jaxnets train`` that need the data and the model.

    Args:
      config: the run's checked options.
      prepared: its model and data.

    Returns:
      The number of training steps per epoch.

    Raises:
      UsageError: for a batch larger than the training split, a ``--freeze`` that
        matches no parameter or every one, or ``--resume`` with fewer ``--epochs`` than
        the run has done.
    """
    from jaxnets.data import steps_per_epoch

    batch, n_train = config["batch_size"], len(prepared.train)
    steps = steps_per_epoch(prepared.train, batch)
    if steps == 0:
        held = prepared.validation["examples"]
        raise option_error(
            "--batch-size",
            f"{batch} exceeds the {n_train} training examples of --dataset "
            f"{config['dataset']} ({held} held out for validation)",
        )
    if config["freeze"]:
        _check_freeze(config, prepared.model, (batch, *prepared.train.inputs.shape[1:]))
    if config["resume"]:
        done = checkpoint_steps(os.path.join(config["out"], "checkpoints"))
        if done and done[-1] > config["epochs"] * steps:
            epochs_done = done[-1] / steps
            shown = f"{epochs_done:g}" if epochs_done.is_integer() else f"{epochs_done:.2f}"
            raise option_error(
                "--epochs",
                f"{config['epochs']} is fewer than the run has done ({shown} epochs, step "
                f"{done[-1]}); give --epochs {math.ceil(epochs_done)} or more",
            )
    return steps
