"""The layer contract: the :class:`Layer` tuple, its function types and its errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, Protocol

import jax

Array = jax.Array
PyTree = Any
Params = dict[str, Any]
State = dict[str, Any]
Spec = Any  # a jax.ShapeDtypeStruct, or a tuple/list of them for multi-input layers
SpecLike = Any  # a shape tuple, a ShapeDtypeStruct, an array, or a tuple of those


class InitFn(Protocol):
    def __call__(self, key: Array, input_spec: SpecLike) -> tuple[Spec, Params, State]: ...


class ApplyFn(Protocol):
    def __call__(
        self, params: Params, state: State, x: Any, *, key: Array | None, train: bool
    ) -> tuple[Any, State]: ...


class _LayerFields(NamedTuple):
    init: InitFn
    apply: ApplyFn
    kind: str
    name: str | None = None


class Layer(_LayerFields):
    """A layer: ``init`` and ``apply`` plus a display ``kind`` and an optional ``name``.

    ``kind`` is the layer type shown in summaries ("Dense", "serial"); ``name`` is
    the key the enclosing combinator stores this layer's params and state under.
    When ``name`` is None the combinator derives one from ``kind`` ("dense_0").

    ``init`` and ``apply`` are wrapped in the door checks of :mod:`jaxnets.core.door`:
    the outermost call checks its key, its input spec, ``train`` and the keys of the
    params and state; the calls the combinators make for their children do not.
    """

    __slots__ = ()

    def __new__(cls, init: InitFn, apply: ApplyFn, kind: str, name: str | None = None):
        from jaxnets.core import door

        if not isinstance(kind, str) or not kind:
            raise TypeError(f"Layer: kind must be a non-empty str, got {kind!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{kind}: name must be a str or None, got {name!r}")
        for field, fn in (("init", init), ("apply", apply)):
            if not callable(fn):
                raise TypeError(f"{kind}: {field} must be callable, got {type(fn).__name__}")
        raw_init, raw_apply = door.raw(init), door.raw(apply)
        return super().__new__(
            cls,
            door.guard_init(raw_init, kind, name),
            door.guard_apply(raw_apply, raw_init, kind, name),
            kind,
            name,
        )

    @classmethod
    def _make(cls, iterable: Any) -> Layer:  # type: ignore[override]
        # _replace builds through _make: the guards then name the new kind and name.
        return cls(*iterable)

    def named(self, name: str) -> Layer:
        """This layer stored under ``name`` in its parent."""
        return self._replace(name=name)


class LayerError(ValueError):
    """A ValueError raised by a layer; its message starts with the layer's path."""


class LayerTypeError(TypeError):
    """A TypeError raised by a layer (wrong dtype); its message names the layer."""


def _prefix_errors(path: str) -> contextlib.AbstractContextManager:
    """Re-raise ValueError/TypeError raised inside with ``path`` prepended once."""

    @contextlib.contextmanager
    def ctx() -> Iterator[None]:
        try:
            yield
        except (TypeError, ValueError) as e:
            if getattr(e, "_jaxnets_door", False):
                raise  # a door check names its layer already
            if isinstance(e, (LayerError, LayerTypeError)):
                raise type(e)(f"{path}/{e}") from None
            if isinstance(e, TypeError):
                raise LayerTypeError(f"{path}: {e}") from e
            raise LayerError(f"{path}: {e}") from e

    return ctx()


def layer_error(kind: str, message: str) -> LayerError:
    """A ValueError for layer ``kind`` (the path is prefixed by the combinators).

    Args:
      kind: the layer type, put first in the message.
      message: what is wrong.

    Returns:
      The :class:`LayerError`, for the caller to raise.
    """
    return LayerError(f"{kind}: {message}")


def param(
    params: Mapping[str, Any],
    name: str,
    kind: str,
    shape: tuple[int, ...] | None = None,
    what: str = "parameter",
):
    """Fetch ``params[name]`` with a clear error if it is missing or mis-shaped.

    Args:
      params: the layer's params dict.
      name: the parameter's key.
      kind: the layer type, for the error message.
      shape: the expected shape (None: not checked).
      what: what the entry is called in messages ("parameter"; "state entry" when
        ``params`` is a layer's state).

    Returns:
      ``params[name]``.

    Raises:
      LayerError: when the entry is missing (or ``params`` is not a mapping) or its
        shape is not ``shape``.
    """
    if not isinstance(params, Mapping) or name not in params:
        got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        given = "params" if what == "parameter" else "state"
        verb = "have" if what == "parameter" else "has"
        raise layer_error(kind, f"missing {what} '{name}'; the {given} given {verb} keys {got}")
    value = params[name]
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise layer_error(
            kind, f"{what} '{name}' has shape {tuple(value.shape)}, expected {tuple(shape)}"
        )
    return value
