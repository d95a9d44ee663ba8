"""The progress output of :func:`~jaxnets.train.loop.fit`.

On a terminal, a bar redrawn in place (carriage return) with the steps done, the rate and
the time left; without one (a log file, CI), one line per epoch, so logs hold no
carriage-return noise. The rate and the time left count only the time between steps of
an epoch: the first step of a run (which compiles) and the evaluations between epochs
are left out, so the estimate is that of the steps still to run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import IO


def is_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is an interactive terminal (False when it cannot tell)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _logs_text(record: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch_time")


class Progress:
    """Progress of a run of ``total`` steps, written to ``stream`` (default stderr).

    Args:
      total: the steps still to run.
      enabled: False writes nothing.
      stream: where to write (None: ``sys.stderr``).
      interactive: redraw a bar in place (None: when ``stream`` is a terminal); False
        writes one line per epoch.
      clock: the time source, in seconds.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> bar = Progress(2, enabled=True, stream=out)
        >>> bar.start_epoch(1, 1)
        >>> bar.step(); bar.step()
        >>> bar.end_epoch({"loss": 0.5})
        >>> out.getvalue().startswith("epoch 1/1: 2/2 steps")
        True
    """

    def __init__(
        self,
        total: int,
        *,
        enabled: bool = True,
        stream: IO[str] | None = None,
        interactive: bool | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.total, self.enabled, self.clock = total, enabled, clock
        self.stream = sys.stderr if stream is None else stream
        self.interactive = is_terminal(self.stream) if interactive is None else interactive
        self.done = 0  # steps done in this run
        self.timed_steps = 0  # steps whose time is known (after another step of the epoch)
        self.step_seconds = 0.0  # their time
        self._last: float | None = None  # when the previous step of this epoch ended
        self._label = ""
        self._epoch_steps = 0
        self._epoch_total = 0
        self._drawn = 0.0
        self._open = False  # a bar is drawn and its line not ended

    def rate(self) -> float | None:
        """Steps per second, from the timed steps (None before two steps of an epoch)."""
        if self.timed_steps == 0 or self.step_seconds <= 0:
            return None
        return self.timed_steps / self.step_seconds

    def eta(self) -> float | None:
        """Seconds left for the remaining steps at :meth:`rate` (None while unknown)."""
        rate = self.rate()
        return None if rate is None else (self.total - self.done) / rate

    def start_epoch(self, epoch: int, epochs: int, steps: int | None = None) -> None:
        """Begin epoch ``epoch`` (counted from 1) of ``epochs``, of ``steps`` steps."""
        self._label = f"epoch {epoch}/{epochs}"
        self._epoch_steps = 0
        self._epoch_total = self.total if steps is None else steps
        self._last = None
        self._epoch_start = self.clock()

    def step(self) -> None:
        """One step done."""
        now = self.clock()
        if self._last is not None:
            self.timed_steps += 1
            self.step_seconds += now - self._last
        self._last = now
        self.done += 1
        self._epoch_steps += 1
        if self.enabled and self.interactive and (now - self._drawn >= 0.1 or self.done == 1):
            self._drawn = now
            self._draw("")
            self._open = True

    def _status(self) -> str:
        rate = self.rate()
        eta = self.eta()
        speed = "? step/s" if rate is None else f"{rate:.1f} step/s"
        left = "?" if eta is None else _clock_text(eta)
        return f"{self._epoch_steps}/{self._epoch_total} steps, {speed}, eta {left}"

    def _draw(self, logs: str) -> None:
        width = 20
        filled = width * self._epoch_steps // max(self._epoch_total, 1)
        bar = "#" * filled + "-" * (width - filled)
        line = f"\r{self._label} [{bar}] {self._status()}" + (f"; {logs}" if logs else "")
        self.stream.write(line + "\x1b[K")
        self.stream.flush()

    def end_epoch(self, record: Mapping[str, float]) -> None:
        """The epoch's record is known: redraw (terminal) or write its line (otherwise)."""
        if not self.enabled:
            return
        if self.interactive:
            self._draw(_logs_text(record))
            self.stream.write("\n")
            self._open = False
        else:
            seconds = record.get("epoch_time", self.clock() - self._epoch_start)
            rate = self.rate()
            speed = "? step/s" if rate is None else f"{rate:.1f} step/s"
            self.stream.write(
                f"{self._label}: {self._epoch_steps}/{self._epoch_total} steps, {speed}, "
                f"{seconds:.1f} s; {_logs_text(record)}\n"
            )
        self.stream.flush()

    def close(self) -> None:
        """End the output (a newline after a bar left mid-epoch)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
        self._open = False
