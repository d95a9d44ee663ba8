"""The ``jaxnets`` command (also ``python -m jaxnets``): train, evaluate, summary, demo."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from jaxnets.cli.demo_command import cmd_demo
from jaxnets.cli.evaluate import cmd_evaluate
from jaxnets.cli.parser import build_parser
from jaxnets.cli.registry import (
    DATASETS,
    build_model,
    load_dataset,
    model_registry,
    prepare,
    resize_images,
)
from jaxnets.cli.summary_command import cmd_summary
from jaxnets.cli.train import RESUME_KEYS, cmd_train

__all__ = [
    "DATASETS",
    "RESUME_KEYS",
    "build_model",
    "build_parser",
    "cmd_demo",
    "cmd_evaluate",
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
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jaxnets`` command with ``argv`` (default: ``sys.argv[1:]``).

    Run as a program (``argv`` None), the process first restarts itself with glibc's
    huge-page tunable where the kernel gives huge pages on request
    (:func:`jaxnets.process.reexec_with_hugepages`; see docs/training.md);
    ``JAXNETS_NO_HUGEPAGES=1`` turns it off. Called with an explicit ``argv`` (from
    Python), it never restarts the process.

    Args:
      argv: the command line without the program name.

    Returns:
      The exit status, 0; bad options and errors raise SystemExit.

    Example:
        >>> import tempfile
        >>> out = tempfile.mkdtemp()
        >>> main(["train", "--model", "mlp", "--model-arg", "hidden=(16,)", "--dataset", "xor",
        ...       "--epochs", "2", "--batch-size", "8", "--out", out, "--no-progress",
        ...       "--no-compile-cache", "--quiet"])
        0
    """
    if argv is None:
        from jaxnets import process

        process.reexec_with_hugepages()
    args = build_parser().parse_args(argv)
    return _COMMANDS[args.command](args)
