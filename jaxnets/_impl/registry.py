"""The registry: each op's reference formulation and the implementations registered beside it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from jaxnets.core.arguments import choice

#: The transformations an implementation may support: reverse-mode differentiation
#: (``jax.grad``, ``jax.vjp``), forward mode (``jax.jvp``, ``jax.jacfwd``), batching
#: (``jax.vmap``) and derivatives of derivatives.
TRANSFORMS = frozenset({"reverse", "forward", "vmap", "higher"})

#: The name of every op's reference formulation (the math in the layer's file).
REFERENCE = "reference"
AUTO = "auto"


@dataclasses.dataclass(frozen=True)
class Implementation:
    """One formulation of an op.

    Attributes:
      op: the op it computes ("batch_norm").
      name: its name, as a layer's ``impl=`` takes it ("closed_form").
      fn: the function, with the reference's signature (None for a reference that is the
        layer's own code path).
      platforms: where ``impl="auto"`` picks it ({"cpu"}); None: everywhere.
      transforms: the transformations it supports (a subset of :data:`TRANSFORMS`).
      applies: ``applies(*args, **static) -> None | str``: None when it can compute these
        arguments, else why not (a phrase: "needs windows that tile the input").
      declares: what the traced program then holds, for the XLA-options rule
        ("convolution", "normalisation").
    """

    op: str
    name: str
    fn: Callable[..., Any] | None
    platforms: frozenset[str] | None
    transforms: frozenset[str]
    applies: Callable[..., str | None]
    declares: frozenset[str]

    def refusal(self, platforms: frozenset[str], needs: frozenset[str]) -> str | None:
        """Why ``auto`` may not pick this one here (None: it may)."""
        if self.platforms is not None and not platforms <= self.platforms:
            return f"serves {sorted(self.platforms)}, not {sorted(platforms)}"
        missing = needs - self.transforms
        if missing:
            return f"does not support {_describe(missing)}"
        return None


@dataclasses.dataclass
class Op:
    """An op: the layer that owns it, its reference and its other implementations, in the
    order ``auto`` tries them."""

    name: str
    layer: str = ""
    reference: Implementation | None = None
    others: dict[str, Implementation] = dataclasses.field(default_factory=dict)

    def names(self) -> list[str]:
        """The choices of ``impl=``: auto, reference, then the others."""
        return [AUTO, REFERENCE, *self.others]


_OPS: dict[str, Op] = {}

_DESCRIPTIONS = {
    "reverse": "reverse-mode differentiation (jax.grad, jax.vjp)",
    "forward": "forward-mode differentiation (jax.jvp, jax.jacfwd)",
    "vmap": "batching (jax.vmap)",
    "higher": "derivatives of derivatives",
}


def _describe(transforms: Iterable[str]) -> str:
    return " or ".join(_DESCRIPTIONS[t] for t in sorted(transforms))


def _op(name: str) -> Op:
    return _OPS.setdefault(name, Op(name))


def _always(*args: Any, **static: Any) -> None:
    return None


def define_op(
    name: str,
    reference: Callable[..., Any] | None,
    *,
    layer: str,
    declares: Iterable[str] = (),
) -> None:
    """Register ``reference`` as the formulation of op ``name`` owned by ``layer`` (it
    supports every transformation on every platform).

    Args:
      name: the op ("max_pool").
      reference: the layer's own function for it, or None where the reference is the
        layer's own code path (the layer then runs it when :func:`choose` returns the
        reference).
      layer: the layer kind that owns it ("MaxPool"), for messages.
      declares: what a program using it holds, for the XLA-options rule.
    """
    op = _op(name)
    op.layer = layer
    op.reference = Implementation(
        name, REFERENCE, reference, None, TRANSFORMS, _always, frozenset(declares)
    )


def register(
    op: str,
    name: str,
    *,
    platforms: Iterable[str] | None,
    transforms: Iterable[str],
    applies: Callable[..., str | None] | None = None,
    declares: Iterable[str] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register the function as implementation ``name`` of ``op``.

    Args:
      op: the op it computes; its signature is the reference's.
      name: the name ``impl=`` takes.
      platforms: where ``impl="auto"`` picks it (None: everywhere).
      transforms: what it supports, from :data:`TRANSFORMS`.
      applies: ``applies(*args, **static) -> None | str`` (default: always applies).
      declares: what a program using it holds, for the XLA-options rule.

    Returns:
      The decorator (it returns the function unchanged).
    """
    supported = frozenset(transforms)
    if not supported <= TRANSFORMS or name in (AUTO, REFERENCE):
        raise ValueError(f"register: bad transforms {sorted(supported)} or name {name!r}")

    def add(fn: Callable[..., Any]) -> Callable[..., Any]:
        where = None if platforms is None else frozenset(platforms)
        impl = Implementation(
            op, name, fn, where, supported, applies or _always, frozenset(declares)
        )
        _op(op).others[name] = impl
        return fn

    return add


def get_op(name: str) -> Op:
    """The op ``name`` (KeyError when nothing defined it)."""
    op = _OPS[name]
    if op.reference is None:
        raise KeyError(f"op {name!r} has implementations but no reference")
    return op


def ops() -> dict[str, Op]:
    """Every op with a reference, by name."""
    return {name: op for name, op in _OPS.items() if op.reference is not None}


def implementations(name: str) -> list[Implementation]:
    """The reference and the other implementations of op ``name``, in that order.

    Example:
        >>> import jaxnets  # registers the layers' ops
        >>> [impl.name for impl in implementations("max_pool")]
        ['reference', 'tiled']
    """
    op = get_op(name)
    return [op.reference, *op.others.values()]  # type: ignore[list-item]


def check_impl(op: str, impl: Any) -> str:
    """``impl`` when it names a choice of ``op``.

    Args:
      op: the op ("max_pool").
      impl: what the layer's ``impl=`` got.

    Returns:
      ``impl``.

    Raises:
      TypeError: ``impl`` is not a str.
      ValueError: ``impl`` is not "auto", "reference" or a registered implementation (the
        message lists them).

    Example:
        >>> import jaxnets  # registers the layers' ops
        >>> check_impl("max_pool", "fast")
        Traceback (most recent call last):
        ValueError: MaxPool: impl must be one of 'auto', 'reference', 'tiled', got 'fast'
    """
    entry = get_op(op)
    return choice(entry.layer or op, "impl", impl, entry.names())
