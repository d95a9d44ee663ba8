"""The ``jaxnets`` command (also ``python -m jaxnets``): train, evaluate, summary, demo,
export, predict."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from jaxnets.cli.demo_command import cmd_demo
from jaxnets.cli.errors import RunError, UsageError, fail
from jaxnets.cli.evaluate import cmd_evaluate
from jaxnets.cli.export_command import cmd_export
from jaxnets.cli.options import RESUME_KEYS, RESUME_MAY_CHANGE, TRAIN_DEFAULTS
from jaxnets.cli.pack_command import cmd_pack
from jaxnets.cli.parser import build_parser
from jaxnets.cli.predict_command import cmd_predict
from jaxnets.cli.prepare import prepare
from jaxnets.cli.registry import (
    DATASETS,
    build_model,
    load_dataset,
    model_registry,
    resize_images,
)
from jaxnets.cli.summary_command import cmd_summary
from jaxnets.cli.train import cmd_train

__all__ = [
    "DATASETS",
    "RESUME_KEYS",
    "RESUME_MAY_CHANGE",
    "TRAIN_DEFAULTS",
    "RunError",
    "UsageError",
    "build_model",
    "build_parser",
    "cmd_demo",
    "cmd_evaluate",
    "cmd_export",
    "cmd_pack",
    "cmd_predict",
    "cmd_summary",
    "cmd_train",
    "load_dataset",
    "main",
    "model_registry",
    "prepare",
    "resize_images",
]

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "summary": cmd_summary,
    "demo": cmd_demo,
    "export": cmd_export,
    "predict": cmd_predict,
    "pack": cmd_pack,
}

#: The commands that train or evaluate, and so may restart for the huge-page tunable.
RESTARTING = ("train", "evaluate", "demo")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jaxnets`` command with ``argv`` (default: ``sys.argv[1:]``).

    Run as a program (``argv`` None), a command that trains or evaluates first restarts
    the process with glibc's huge-page tunable where the kernel gives huge pages on
    request (:func:`jaxnets.process.reexec_with_hugepages`; see docs/training.md);
    ``JAXNETS_NO_HUGEPAGES=1`` turns it off. ``--help``, ``--version`` and ``summary``
    never restart, and neither does a call with an explicit ``argv`` (from Python).

    Args:
      argv: the command line without the program name.

    Returns:
      The exit status, 0. Errors raise SystemExit after one line on stderr,
      ``jaxnets <command>: error: ...``: status 2 for options that are wrong, conflict
      or do nothing (nothing under ``--out`` is touched), 1 for a run that fails.

    Example:
        >>> import tempfile
        >>> out = tempfile.mkdtemp()
        >>> main(["train", "--model", "mlp", "--model-arg", "hidden=(16,)", "--dataset", "xor",
        ...       "--epochs", "2", "--batch-size", "8", "--out", out, "--no-progress",
        ...       "--no-compile-cache", "--quiet"])
        0
    """
    args = build_parser().parse_args(argv)
    if argv is None and args.command in RESTARTING:
        from jaxnets import process

        process.reexec_with_hugepages()
    try:
        return _COMMANDS[args.command](args)
    except UsageError as e:
        fail(args.command, str(e), 2)
    except RunError as e:
        fail(args.command, str(e), 1)
