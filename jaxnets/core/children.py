"""Children of combinators: their keys, their paths, their errors and the init records."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from jaxnets.core.arguments import received
from jaxnets.core.contract import Array, Layer, Params, Spec, State, _prefix_errors
from jaxnets.core.door import quiet_during_checks
from jaxnets.core.specs import name_key
from jaxnets.core.trees import count_params


class InitRecord(NamedTuple):
    """What :func:`record_init` notes about one sub-layer: counts, not arrays."""

    path: str
    kind: str
    output_spec: Spec
    param_count: int
    state_count: int


_RECORDER: contextvars.ContextVar[list[InitRecord | None] | None] = contextvars.ContextVar(
    "jaxnets_init_recorder", default=None
)
_PATH: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "jaxnets_layer_path", default=()
)
quiet_during_checks(_RECORDER)  # the door's abstract init is not listed in summaries


@contextlib.contextmanager
def record_init() -> Iterator[list[InitRecord | None]]:
    """Collect one :class:`InitRecord` per sub-layer while ``init`` runs (for summaries).

    A sub-layer's slot is reserved before its ``init`` runs and stays None if that fails.
    This is host-side bookkeeping during initialisation only; ``apply`` never sees it.

    Yields:
      The list of records, filled in as the children are initialised (parents first).
    """
    records: list[InitRecord | None] = []
    token = _RECORDER.set(records)
    try:
        yield records
    finally:
        _RECORDER.reset(token)


@contextlib.contextmanager
def records_stacked(n: int | None) -> Iterator[None]:
    """Inside, sub-layers' init records count ``n`` stacked copies of their params and
    state (``repeat``'s vmapped init); with ``n=None`` nothing is recorded (a second init
    made only for its shapes).

    Args:
      n: the number of stacked copies, or None to record nothing.

    Yields:
      Nothing; the records made inside are scaled (or skipped) when the block ends.
    """
    records = _RECORDER.get()
    if records is None:
        yield
        return
    if n is None:
        token = _RECORDER.set(None)
        try:
            yield
        finally:
            _RECORDER.reset(token)
        return
    start = len(records)
    yield
    for i in range(start, len(records)):
        r = records[i]
        if r is not None:
            records[i] = r._replace(param_count=r.param_count * n, state_count=r.state_count * n)


def current_path() -> str:
    """The path of the layer being initialised or applied ("" outside any combinator).

    Returns:
      The names of the enclosing children joined by ``/`` ("outer/probe").

    Example:
        >>> import jax, jaxnets as jn
        >>> seen = []
        >>> probe = jn.Lambda(lambda x: seen.append(current_path()) or x)
        >>> _ = jn.serial(("outer", jn.serial(("probe", probe)))).init(jax.random.key(0), (1,))
        >>> seen[-1]
        'outer/probe'
    """
    return "/".join(_PATH.get())


def init_child(name: str, layer: Layer, key: Array, spec: Spec):
    """Initialise ``layer`` as child ``name`` of a combinator: key, path and errors.

    Args:
      name: the child's key in its parent; its key is derived from it (:func:`name_key`).
      layer: the child layer.
      key: the parent's key.
      spec: the child's input spec.

    Returns:
      ``(output_spec, params, state)`` of the child; errors are prefixed with ``name``.
    """
    token = _PATH.set(_PATH.get() + (name,))
    records = _RECORDER.get()
    slot = 0
    if records is not None:  # reserve the slot so parents are listed before children
        slot = len(records)
        records.append(None)
    try:
        with _prefix_errors(name):
            out_spec, params, state = layer.init(name_key(key, name), spec)
        if records is not None:
            records[slot] = InitRecord(
                "/".join(_PATH.get()),
                layer.kind,
                out_spec,
                count_params(params),
                count_params(state),
            )
        return out_spec, params, state
    finally:
        _PATH.reset(token)


def apply_child(name: str, layer: Layer, params: Params, state: State, x, key, train):
    """Apply child ``name``: its sub-dicts, its key, its path and errors prefixed with its
    name.

    Args:
      name: the child's key in its parent.
      layer: the child layer.
      params: the parent's params; the child gets ``params[name]`` (``{}`` if absent).
      state: the parent's state; the child gets ``state[name]`` (``{}`` if absent).
      x: the child's input.
      key: the parent's key (or None); the child gets one derived from ``name``.
      train: whether in training mode.

    Returns:
      ``(y, new_state)`` of the child.
    """
    token = _PATH.set(_PATH.get() + (name,))
    try:
        with _prefix_errors(name):
            return layer.apply(
                params.get(name, {}), state.get(name, {}), x, key=name_key(key, name), train=train
            )
    finally:
        _PATH.reset(token)


def _store(tree: dict, name: str, value: dict) -> None:
    if value:
        tree[name] = value


def init_children(
    children: Sequence[tuple[str, Layer]], key: Array, specs: Sequence[Spec]
) -> tuple[list[Spec], Params, State]:
    """Initialise each child on its own input spec.

    Args:
      children: ``(name, layer)`` pairs.
      key: the parent's key (each child derives its own from its name).
      specs: one input spec per child.

    Returns:
      ``(output_specs, params, state)``: the list of output specs and the params and state
      dicts keyed by child name (children without any are left out).
    """
    params: Params = {}
    state: State = {}
    outs = []
    for (child_name, child), spec in zip(children, specs, strict=True):
        out, p, s = init_child(child_name, child, key, spec)
        outs.append(out)
        _store(params, child_name, p)
        _store(state, child_name, s)
    return outs, params, state


def apply_children(
    children: Sequence[tuple[str, Layer]],
    params: Params,
    state: State,
    xs: Sequence[Any],
    key,
    train,
) -> tuple[list[Any], State]:
    """Apply each child to its own input.

    Args:
      children: ``(name, layer)`` pairs.
      params: the parent's params, keyed by child name.
      state: the parent's state, keyed by child name.
      xs: one input per child.
      key: the parent's key (or None).
      train: whether in training mode.

    Returns:
      ``(outputs, new_state)``: the list of outputs and the new state dict keyed by child
      name (children without state left out).
    """
    new_state: State = {}
    outs = []
    for (child_name, child), x in zip(children, xs, strict=True):
        y, s = apply_child(child_name, child, params, state, x, key, train)
        outs.append(y)
        _store(new_state, child_name, s)
    return outs, new_state


def check_name(where: str, name: Any, *, optional: bool = True) -> str | None:
    """A child's name: a non-empty str without ``/`` (or None, when ``optional``).

    Args:
      where: the function or layer, first in the message.
      name: what came.
      optional: whether None is accepted.

    Returns:
      ``name``.

    Raises:
      TypeError: ``name`` is not a str.
      ValueError: ``name`` is empty or holds a ``/``.
    """
    if name is None and optional:
        return None
    expected = "a non-empty str without '/'" + (" or None" if optional else "")
    if not isinstance(name, str):
        raise TypeError(f"{where}: name must be {expected}, got {received(name)}")
    if not name or "/" in name:
        raise ValueError(f"{where}: name must be {expected}, got {name!r}")
    return name


def check_layer(where: str, what: str, value: Any) -> Layer:
    """``value`` when it is a :class:`Layer`, else a TypeError naming ``what`` came.

    Args:
      where: the function, first in the message.
      what: the argument ("layer", "shortcut", "block").
      value: what came.

    Returns:
      ``value``.

    Raises:
      TypeError: ``value`` is not a Layer (a layer class or factory not called, a name...).
    """
    if isinstance(value, Layer):
        return value
    hint = ""
    if callable(value):
        hint = " (a layer constructor or function not called? e.g. jn.Relu(), not jn.Relu)"
    raise TypeError(f"{where}: {what} must be a Layer, got {received(value)}{hint}")


def _describe_item(item: Any) -> str:
    if isinstance(item, (list, tuple)) and item and all(isinstance(i, Layer) for i in item):
        return (
            f"a {type(item).__name__} of {len(item)} layers (pass the layers as separate "
            f"arguments: serial(*layers))"
        )
    if callable(item):
        hint = "a layer constructor not called? jn.Relu(), not jn.Relu"
        return f"{received(item)}, not a Layer ({hint})"
    return received(item)


def as_named_layers(layers: Sequence[Any], where: str) -> list[tuple[str, Layer]]:
    """Give every child a unique name: its own, or kind_index counted per kind.

    Args:
      layers: the children as given, each a :class:`Layer` or a ``(name, layer)`` pair.
      where: the combinator, first in messages.

    Returns:
      The ``(name, layer)`` pairs in order.

    Raises:
      ValueError: no children, or names that are empty, hold ``/`` or repeat.
      TypeError: an item that is neither (its position and what came).
    """
    if not layers:
        raise ValueError(f"{where}: needs at least one layer, got none")
    named_layers: list[tuple[str, Layer]] = []
    counts: dict[str, int] = {}
    for i, item in enumerate(layers):
        if isinstance(item, Layer):
            layer = item
            if layer.name is not None:
                name = layer.name
            else:
                base = layer.kind.lower()
                name = f"{base}_{counts.get(base, 0)}"
                counts[base] = counts.get(base, 0) + 1
        elif (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], Layer)
        ):
            name, layer = item
        else:
            raise TypeError(
                f"{where}: expected Layer or (name, Layer) items; item {i} is "
                f"{_describe_item(item)}"
            )
        if "/" in name or not name:
            raise ValueError(
                f"{where}: item {i}: layer name {name!r} must be non-empty without '/'"
            )
        named_layers.append((name, layer))
    names = [n for n, _ in named_layers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{where}: duplicate layer names {duplicates}; give each a unique name")
    return named_layers
