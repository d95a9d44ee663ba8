"""The options of ``jaxnets train`` as one checked config: defaults, resume, conflicts.

:func:`train_config` merges what was typed with the defaults (or, with ``--resume``, with
the run's ``config.json``) and refuses, before anything is created or changed under
``--out``, options that are out of range, conflict, or would do nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from typing import Any

from jaxnets.cli.errors import UsageError, option_error

#: ``jaxnets train``'s defaults; options typed on the command line override them.
TRAIN_DEFAULTS: dict[str, Any] = {
    "model": None,
    "model_arg": [],
    "dataset": None,
    "data_dir": None,
    "resize": "auto",
    "val_split": 0.1,
    "epochs": 10,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 1e-3,
    "schedule": "constant",
    "warmup_epochs": 0.0,
    "weight_decay": 0.0,
    "freeze": [],
    "clip_norm": None,
    "accumulate": 1,
    "precision": "float32",
    "loss_scale": None,
    "seed": 0,
    "out": "runs/train",
    "keep": 3,
    "checkpoint_every": None,
    "early_stopping": None,
    "tensorboard": False,
    "no_progress": False,
    "quiet": False,
    "compile_cache": None,
    "no_compile_cache": False,
}

#: Options that must match when a run is resumed: they define what is trained.
RESUME_KEYS = (
    "model",
    "model_arg",
    "dataset",
    "resize",
    "val_split",
    "batch_size",
    "optimizer",
    "lr",
    "schedule",
    "warmup_epochs",
    "weight_decay",
    "freeze",
    "clip_norm",
    "accumulate",
    "precision",
    "loss_scale",
    "seed",
)

#: Options that may change on ``--resume`` (every other one must match the run's).
RESUME_MAY_CHANGE = tuple(k for k in TRAIN_DEFAULTS if k not in RESUME_KEYS)

#: The data sets that are built in (no ``--data-dir``) and those read from files.
BUILT_IN = ("digits", "xor", "spirals")
FROM_FILES = ("mnist", "fashion_mnist", "cifar10")

_CHECKPOINT = re.compile(r"^ckpt-(\d+)\.jnc$")


def flag_name(key: str) -> str:
    """The option of a config key: ``batch_size`` -> ``--batch-size``.

    Args:
      key: the config key.

    Returns:
      The option as typed.
    """
    return "--" + key.replace("_", "-")


def check_out(out: str) -> str:
    """``--out`` as an absolute path, refused when it (or a folder above it) is a file or
    cannot be written.

    Args:
      out: the option's value.

    Returns:
      The absolute path.
    """
    path = os.path.abspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise option_error("--out", f"{out!r} is a file, not a folder; give a folder")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise option_error("--out", f"{out!r} is inside {parent!r}, which is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise option_error("--out", f"{out!r}: cannot write into {parent!r}")
    return path


def checkpoint_steps(folder: str) -> list[int]:
    """The steps of the ``ckpt-<step>.jnc`` files in ``folder`` (none if it is missing).

    Args:
      folder: a run's ``checkpoints`` folder.

    Returns:
      The steps, sorted.
    """
    if not os.path.isdir(folder):
        return []
    found = (_CHECKPOINT.match(name) for name in os.listdir(folder))
    return sorted(int(m.group(1)) for m in found if m)


def read_run_config(out: str, option: str) -> dict[str, Any]:
    """The ``config.json`` of the run in ``out``, refused when missing or unreadable.

    Args:
      out: the run's folder.
      option: the option that named it (``--out`` or ``--run``), for the message.

    Returns:
      The config.
    """
    path = os.path.join(out, "config.json")
    if not os.path.isfile(path):
        raise option_error(
            option, f"{out!r} holds no run (no config.json); give the --out of a jaxnets train"
        )
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise option_error(option, f"cannot read {path}: {e}") from None
    if not isinstance(config, dict) or "model" not in config:
        raise option_error(option, f"{path} is not the config of a jaxnets train run")
    if "val_split" not in config:
        raise option_error(
            option,
            f"the run in {out!r} was written by a jaxnets that validated on the test set "
            f"(its config.json has no val_split); start a new run in another --out",
        )
    return config


def _resumed(out: str, given: dict[str, Any]) -> dict[str, Any]:
    """The run's config with the options that may change on resume taken from ``given``."""
    saved = read_run_config(out, "--out")
    for key in RESUME_KEYS:
        if key in given and given[key] != saved.get(key):
            may = ", ".join(flag_name(k) for k in RESUME_MAY_CHANGE if k != "out")
            raise option_error(
                flag_name(key),
                f"--resume cannot change {key} (the run has {saved.get(key)!r}, got "
                f"{given[key]!r}); options that may change on resume: {may}",
            )
    config = {**TRAIN_DEFAULTS, **{k: v for k, v in saved.items() if k in TRAIN_DEFAULTS}}
    config.update(given)
    return config


def _fresh(out: str, given: dict[str, Any]) -> dict[str, Any]:
    """The defaults overridden by ``given``; refused over an existing run."""
    missing = [flag_name(k) for k in ("model", "dataset") if given.get(k) is None]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)}")
    if os.path.isfile(os.path.join(out, "config.json")) or checkpoint_steps(
        os.path.join(out, "checkpoints")
    ):
        raise option_error(
            "--out",
            f"{out!r} already holds a run (config.json or checkpoints); pass --resume to "
            f"continue it or choose another --out",
        )
    return {**TRAIN_DEFAULTS, **given}


def check_data_dir(dataset: str | None, data_dir: str | None) -> None:
    """Refuse a ``--data-dir`` with a built-in data set, a missing folder, or a data set
    read from files without one.

    Args:
      dataset: the ``--dataset``.
      data_dir: the ``--data-dir``, or None.

    Returns:
      None.
    """
    if data_dir is not None:
        if dataset is None:
            raise option_error("--data-dir", "needs --dataset (mnist, fashion_mnist, cifar10)")
        if dataset in BUILT_IN:
            raise option_error(
                "--data-dir", f"--dataset {dataset} is built in and reads no files; drop it"
            )
        if not os.path.isdir(data_dir):
            raise option_error("--data-dir", f"no folder {data_dir!r}")
    elif dataset in FROM_FILES:
        raise option_error("--data-dir", f"--dataset {dataset} reads its files from --data-dir DIR")


def _check_conflicts(config: dict[str, Any]) -> None:
    """Refuse options that conflict with others or would do nothing."""
    check_data_dir(config["dataset"], config["data_dir"])
    if config["loss_scale"] is not None and config["precision"] != "float16":
        raise option_error(
            "--loss-scale",
            f"only float16 scales the loss, and --precision is {config['precision']}; "
            f"drop --loss-scale {config['loss_scale']:g} or pass --precision float16",
        )
    if config["warmup_epochs"] > 0:
        if config["schedule"] != "warmup_cosine":
            raise option_error(
                "--warmup-epochs",
                f"{config['warmup_epochs']:g} needs a schedule that warms up "
                f"(--schedule warmup_cosine), and --schedule is {config['schedule']}",
            )
        if config["warmup_epochs"] >= config["epochs"]:
            raise option_error(
                "--warmup-epochs",
                f"{config['warmup_epochs']:g} is not shorter than the run "
                f"(--epochs {config['epochs']})",
            )
    if config["early_stopping"] is not None and config["val_split"] == 0:
        raise option_error(
            "--early-stopping",
            f"{config['early_stopping']} watches val_loss, and --val-split 0 keeps no "
            f"validation data",
        )
    if config["compile_cache"] is not None and config["no_compile_cache"]:
        raise option_error("--compile-cache", "conflicts with --no-compile-cache; give one")
    for key in ("model_arg", "freeze"):
        for item in config[key]:
            if not item:
                raise option_error(flag_name(key), f"got an empty value {item!r}")


def train_config(args: argparse.Namespace) -> dict[str, Any]:
    """The whole config of a ``jaxnets train``, checked; nothing is written.

    Args:
      args: the parsed options; only those typed are attributes (the parser's default
        is ``argparse.SUPPRESS``).

    Returns:
      Every option of :data:`TRAIN_DEFAULTS` by name, ``out`` absolute, ``resume``.
    """
    given = {k: v for k, v in vars(args).items() if k not in ("command", "resume")}
    resume = bool(getattr(args, "resume", False))
    out = check_out(given.get("out", TRAIN_DEFAULTS["out"]))
    config = _resumed(out, given) if resume else _fresh(out, given)
    config["out"] = out
    _check_conflicts(config)
    config["resume"] = resume
    return config
