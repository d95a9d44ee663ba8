"""The bad-input corpus: one named case per mistake a user can make, and how to check it.

Each area has its own module ``tests/bad_inputs_<area>.py`` with a list ``CASES`` of
:class:`Bad`; ``tests/test_bad_inputs.py`` runs them all. A case passes when the call
raises (or warns with) the expected type and its message contains every string of
``mentions``: the argument or layer it names, what was expected and what came.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Bad:
    """One bad input.

    Args:
      area: the part of the library ("layers", "specs", "apply", "losses", "data",
        "fit", "checkpoint", "cli", ...).
      name: what is wrong, in a few words (unique within the area).
      call: runs the mistake.
      raises: the exception (or, with ``warns``, the warning) class expected.
      mentions: strings the message must contain (the argument or layer name, the
        expected and the received value).
      warns: a warning is expected instead of an exception.
    """

    area: str
    name: str
    call: Callable[[], object]
    raises: type[BaseException] | tuple[type[BaseException], ...]
    mentions: tuple[str, ...]
    warns: bool = False

    @property
    def id(self) -> str:
        return f"{self.area}: {self.name}"


class CommandError(Exception):
    """A command-line run that exited with a non-zero status: its code and stderr."""

    def __init__(self, code: int, stderr: str):
        super().__init__(f"exit {code}: {stderr}")
        self.code = code
        self.stderr = stderr
