"""The two ways a ``jaxnets`` command fails: a usage error (exit 2) and a run error (exit 1).

Both end as one line on stderr, ``jaxnets <command>: error: <message>``, as argparse's own
errors do; :func:`jaxnets.cli.main` turns them into ``SystemExit``, never a traceback.
"""

from __future__ import annotations

import sys
from typing import NoReturn


class UsageError(Exception):
    """An option that is wrong, conflicts with another or does nothing (exit status 2).

    Raised before anything is created or changed under ``--out``. The message starts
    with ``argument --<option>:`` where one option is to blame, as argparse's do.
    """


class RunError(Exception):
    """A run that failed after its options were accepted (exit status 1): a damaged
    checkpoint, a non-finite loss, a file that cannot be read."""


def option_error(option: str, message: str) -> UsageError:
    """A :class:`UsageError` about ``option``, worded as argparse words its own.

    Args:
      option: the option as typed, e.g. ``--epochs``.
      message: what is wrong with it and what to give instead.

    Returns:
      The error, to raise: ``argument --epochs: <message>``.
    """
    return UsageError(f"argument {option}: {message}")


def fail(command: str, message: str, status: int) -> NoReturn:
    """Print ``jaxnets <command>: error: <message>`` on one line to stderr and exit.

    Args:
      command: the subcommand (``train``, ``evaluate``, ...).
      message: the error; line breaks are folded into spaces.
      status: the exit status (2 for usage errors, 1 for run errors).

    Returns:
      Never; raises SystemExit(status).
    """
    text = " ".join(message.split())
    sys.stderr.write(f"jaxnets {command}: error: {text}\n")
    raise SystemExit(status)
