"""Choosing an implementation for one call of an op, and recording the choices."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, NamedTuple

from jaxnets._impl.context import platforms_of, transforms_of
from jaxnets._impl.registry import AUTO, REFERENCE, Implementation, _describe, get_op
from jaxnets.core import LayerError, current_path
from jaxnets.core.door import quiet_during_checks


class Choice(NamedTuple):
    """One op's implementation in a traced program.

    Attributes:
      path: the layer's path while a model is initialised or applied ("" outside one).
      op: the op ("lstm_sequence").
      impl: the implementation's name ("chunked").
      declares: what it declared for the XLA-options rule.
    """

    path: str
    op: str
    impl: str
    declares: frozenset[str]


_RECORD: contextvars.ContextVar[list[Choice] | None] = contextvars.ContextVar(
    "jaxnets_impl_choices", default=None
)
quiet_during_checks(_RECORD)  # the door's abstract init chooses nothing for the summary


@contextlib.contextmanager
def record_choices() -> Iterator[list[Choice]]:
    """Collect a :class:`Choice` for every op chosen while the block traces a program.

    Example:
        >>> import jax, jaxnets as jn
        >>> with record_choices() as choices:
        ...     _ = jn.BatchNorm().apply(*jn.BatchNorm().init(jax.random.key(0), (2, 3))[1:],
        ...                              jax.numpy.ones((2, 3)), train=True)
        >>> [c.op for c in choices]
        ['batch_norm']
    """
    records: list[Choice] = []
    token = _RECORD.set(records)
    try:
        yield records
    finally:
        _RECORD.reset(token)


def declared(choices: list[Choice]) -> frozenset[str]:
    """Everything the chosen implementations declared."""
    return frozenset().union(*(c.declares for c in choices))


def _record(impl: Implementation) -> None:
    records = _RECORD.get()
    if records is not None:
        records.append(Choice(current_path(), impl.op, impl.name, impl.declares))


def choose(op: str, impl: str, *args: Any, **static: Any) -> Implementation:
    """The implementation that computes ``op`` on these arguments (call its ``fn`` with
    them).

    ``impl="auto"`` takes the first registered implementation that serves the platform
    of the arrays in ``args``, supports the transformations applied to them (all of
    them when a transformation may still come, e.g. under ``jax.jit`` without a
    derivative) and applies to these arguments; else the reference. A named
    implementation that cannot compute them here raises a :class:`LayerError` naming
    ``impl="reference"`` as the fix.

    Args:
      op: the op's name.
      impl: "auto", "reference" or an implementation's name.
      *args: the op's arguments (arrays and pytrees of them; other values are ignored
        by the checks).
      **static: keyword arguments of the op.

    Returns:
      The :class:`Implementation` (its ``name`` is "reference" for the reference).
    """
    entry = get_op(op)
    reference = entry.reference
    assert reference is not None
    if impl == REFERENCE:
        chosen = reference
    elif impl == AUTO:
        chosen = reference
        needs = transforms_of(*args, static).needs
        platforms = platforms_of(*args, static)
        for candidate in entry.others.values():
            serves = candidate.refusal(platforms, needs) is None
            if serves and candidate.applies(*args, **static) is None:
                chosen = candidate
                break
    else:
        chosen = entry.others[impl]
        why = chosen.applies(*args, **static)
        if why is None:
            seen = transforms_of(*args, static)
            missing = seen.needs - chosen.transforms if seen.known else frozenset()
            why = f"does not support {_describe(missing)}" if missing else None
        if why is not None:
            raise LayerError(
                f"{entry.layer}: impl={impl!r} {why}; use impl='reference' (or 'auto', "
                f"which picks one that can)"
            )
    _record(chosen)
    return chosen
