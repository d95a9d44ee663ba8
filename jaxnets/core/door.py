"""The checks at a layer's door: its key, its input spec, its ``train`` flag and the keys of
its params and state, made once by the outermost ``init`` or ``apply`` call.

Every :class:`~jaxnets.core.contract.Layer` wraps its ``init`` and ``apply`` in these guards.
The outermost call (the one a user makes) checks its arguments; calls made inside it, by
the combinators for their children, skip the checks. The keys of params and state are
static under ``jax.jit``, so the comparison with the ones ``init`` makes (an abstract
``init`` on the input's shapes, cached) runs when a step is traced, never per step.
"""

from __future__ import annotations

import contextlib
import contextvars
import numbers
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import numpy as np

from jaxnets.core.arguments import received
from jaxnets.core.contract import LayerError, LayerTypeError

#: True while a layer's ``init`` or ``apply`` runs: the calls inside skip the door checks.
_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("jaxnets_inside", default=False)

#: Context variables set to None while the structure check runs an abstract ``init`` (the
#: summary's records and the implementation choices must not see it).
_QUIET: list[contextvars.ContextVar] = []

_CACHE: dict[Any, str | None] = {}
_CACHE_SIZE = 1024


def quiet_during_checks(var: contextvars.ContextVar) -> None:
    """Silence ``var`` (set it to None) while the door's abstract ``init`` runs."""
    if var not in _QUIET:
        _QUIET.append(var)


def door_error(error: Exception) -> Exception:
    """Mark ``error`` as raised at the door: the combinators pass it on without a prefix."""
    error._jaxnets_door = True  # type: ignore[attr-defined]
    return error


def _describe(value: Any) -> str:
    """A value as the messages show it (arrays by dtype and shape, not their numbers)."""
    if isinstance(value, (jax.Array, np.ndarray)) or hasattr(value, "aval"):
        return f"an array of dtype {value.dtype} and shape {tuple(value.shape)}"
    return received(value)


def is_key(key: Any) -> bool:
    """True for a JAX PRNG key: ``jax.random.key(seed)`` (a scalar of a key dtype) or a
    legacy ``jax.random.PRNGKey(seed)`` (uint32 of shape ``(2,)``), tracers included.

    Args:
      key: any value.

    Returns:
      Whether ``key`` is one PRNG key.
    """
    dtype = getattr(key, "dtype", None)
    shape = getattr(key, "shape", None)
    if dtype is None or shape is None or not hasattr(key, "ndim"):
        return False
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return tuple(shape) == ()
    return np.dtype(dtype) == np.uint32 and tuple(shape) == (2,)


def check_key(where: str, key: Any, *, optional: bool) -> None:
    """Raise a TypeError unless ``key`` is a PRNG key (or None, when ``optional``).

    Args:
      where: the layer or function, first in the message.
      key: what came.
      optional: whether None is accepted.

    Raises:
      LayerTypeError: ``key`` is not a key.
    """
    if key is None and optional:
        return
    if not is_key(key):
        raise door_error(
            LayerTypeError(
                f"{where}: key must be a JAX PRNG key (jax.random.key(seed)), got {_describe(key)}"
            )
        )


def _looks_like_shape(value: Any) -> bool:
    """A tuple or list of dims: empty, or holding at least one number (bools included)."""
    return isinstance(value, (tuple, list)) and (
        not value or any(isinstance(d, (numbers.Number, np.generic)) for d in value)
    )


def shape_dims(where: str, shape: Any) -> tuple[int, ...]:
    """The dims of a bare shape as Python ints, each checked to be a positive int.

    Args:
      where: the start of the message ("input_spec", or "Dense: input_spec").
      shape: a tuple or list of dims.

    Returns:
      The dims as a tuple of ints.

    Raises:
      TypeError: a dim is not an integer (a bool, a float, None...).
      ValueError: a dim is 0 or negative.
    """
    dims = []
    for i, d in enumerate(shape):
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(
                f"{where}: dim {i} must be a positive int, got {received(d)} "
                f"in shape {tuple(shape)}"
            )
        if d < 1:
            raise ValueError(
                f"{where}: dim {i} must be a positive int, got {d} in shape {tuple(shape)}"
            )
        dims.append(int(d))
    return tuple(dims)


def check_spec(where: str, spec: Any) -> None:
    """Check every shape in an input spec: bare shapes and the shapes of specs and arrays
    must have positive int dims. Anything else is left to the layer's own checks.

    Args:
      where: the layer, first in the message.
      spec: the input spec as given to ``init``.

    Raises:
      LayerTypeError, LayerError: for a bad dim (marked as raised at the door).
    """
    try:
        if _looks_like_shape(spec):
            shape_dims(f"{where}: input_spec", spec)
        elif isinstance(spec, jax.ShapeDtypeStruct) or (
            hasattr(spec, "shape") and hasattr(spec, "dtype")
        ):
            shape_dims(f"{where}: input_spec", tuple(spec.shape))
        elif isinstance(spec, (tuple, list)):
            for s in spec:
                check_spec(where, s)
        elif isinstance(spec, Mapping):
            for s in spec.values():
                check_spec(where, s)
    except (LayerError, LayerTypeError):
        raise
    except TypeError as e:
        raise door_error(LayerTypeError(str(e))) from None
    except ValueError as e:
        raise door_error(LayerError(str(e))) from None


def check_train(where: str, train: Any) -> None:
    """Raise a TypeError unless ``train`` is a bool (Python's or NumPy's).

    Args:
      where: the layer, first in the message.
      train: what came.

    Raises:
      LayerTypeError: ``train`` is a string, a number, an array or a traced value.
    """
    if isinstance(train, (bool, np.bool_)):
        return
    hint = ""
    if isinstance(train, jax.core.Tracer):
        hint = " (under jax.jit, make it static: static_argnames='train')"
    raise door_error(
        LayerTypeError(f"{where}: train must be True or False, got {_describe(train)}{hint}")
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    tokens = [(var, var.set(None)) for var in _QUIET]
    inside = _INSIDE.set(True)
    try:
        yield
    finally:
        _INSIDE.reset(inside)
        for var, token in reversed(tokens):
            var.reset(token)


def _paths(tree: Any) -> list[str]:
    from jaxnets.core.trees import path_str

    return [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _spec_of(leaves: list[Any], treedef: Any) -> Any:
    """The spec of an apply input, from its flattened leaves."""
    specs = [jax.ShapeDtypeStruct(tuple(a.shape), a.dtype) for a in leaves]
    return jax.tree.unflatten(treedef, specs)


def _listed(paths: list[str]) -> str:
    shown = [repr(p) for p in paths[:5]]
    more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
    return "[" + ", ".join(shown) + "]" + more


def _mismatch(where: str, init: Any, spec: Any, params: Any, state: Any) -> str | None:
    """What is wrong with the keys of ``params`` and ``state`` (None: nothing, or the
    expected keys could not be found from an abstract ``init``)."""
    try:
        with _quiet():
            _, exp_params, exp_state = jax.eval_shape(lambda k: init(k, spec), jax.random.key(0))
    except Exception:  # the layer's own apply reports what its init could not take
        return None
    for what, given, expected in (("params", params, exp_params), ("state", state, exp_state)):
        have, want = _paths(given), set(_paths(expected))
        extra = [p for p in have if p not in want]
        missing = sorted(want.difference(have))
        if extra:
            hint = f"; it lacks {_listed(missing)} (misspelt?)" if missing else ""
            return (
                f"{where}: unexpected {what} entries {_listed(extra)}, which the model's "
                f"init does not make{hint}; pass the {what} that init returned"
            )
        if missing and what == "state":
            return (
                f"{where}: the state is missing entries {_listed(missing)}; pass the state "
                f"that init (or the last apply) returned"
            )
    return None


def check_structure(where: str, init: Any, params: Any, state: Any, x: Any) -> None:
    """Compare the keys of ``params`` and ``state`` with those ``init`` makes for ``x``.

    Params entries the model does not have, and state entries it does not have or lacks,
    raise a LayerError naming their paths. Missing params are left to the layers (they
    name the layer and the entry). Runs at trace time; the result is cached by the
    layer, the input's shapes and the trees' structures.

    Args:
      where: the layer, first in the message.
      init: the layer's init function.
      params: the params given to apply.
      state: the state given to apply.
      x: the input given to apply.

    Raises:
      LayerError: naming the unexpected or missing entries.
    """
    leaves, treedef = jax.tree.flatten(x)
    if not all(hasattr(a, "shape") and hasattr(a, "dtype") for a in leaves):
        return
    try:
        cache_key: Any = (
            init,
            treedef,
            tuple((tuple(a.shape), a.dtype) for a in leaves),
            jax.tree.structure(params),
            jax.tree.structure(state),
            where,
        )
        hash(cache_key)
    except TypeError:
        cache_key = None
    if cache_key is not None and cache_key in _CACHE:
        message = _CACHE[cache_key]
    else:
        message = _mismatch(where, init, _spec_of(leaves, treedef), params, state)
        if cache_key is not None:
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.clear()
            _CACHE[cache_key] = message
    if message is not None:
        raise door_error(LayerError(message))


_NO_TRAIN = object()


def guard_init(init: Any, kind: str, name: str | None) -> Any:
    """``init`` that, when called from outside any layer, first checks its key and spec."""

    def checked_init(key, input_spec):
        if _INSIDE.get():
            return init(key, input_spec)
        where = name or kind
        check_key(where, key, optional=False)
        check_spec(where, input_spec)
        token = _INSIDE.set(True)
        try:
            return init(key, input_spec)
        finally:
            _INSIDE.reset(token)

    checked_init._jaxnets_raw = init  # type: ignore[attr-defined]
    return checked_init


def guard_apply(apply: Any, init: Any, kind: str, name: str | None) -> Any:
    """``apply`` that, when called from outside any layer, first checks ``train``, the key
    and the keys of params and state."""

    def checked_apply(params, state, x, *args, **kwargs):
        if _INSIDE.get():
            return apply(params, state, x, *args, **kwargs)
        where = name or kind
        train = kwargs.get("train", _NO_TRAIN)
        if train is _NO_TRAIN:
            raise door_error(
                LayerTypeError(f"{where}: apply needs train=True or train=False (a keyword)")
            )
        check_train(where, train)
        check_key(where, kwargs.get("key"), optional=True)
        for what, tree in (("params", params), ("state", state)):
            if not isinstance(tree, Mapping):
                raise door_error(
                    LayerTypeError(
                        f"{where}: {what} must be a dict (the {what} init returned), "
                        f"got {_describe(tree)}"
                    )
                )
        check_structure(where, init, params, state, x)
        token = _INSIDE.set(True)
        try:
            return apply(params, state, x, *args, **kwargs)
        finally:
            _INSIDE.reset(token)

    checked_apply._jaxnets_raw = apply  # type: ignore[attr-defined]
    return checked_apply


def raw(fn: Any) -> Any:
    """The function a guard wraps (``fn`` itself when it is not a guard)."""
    return getattr(fn, "_jaxnets_raw", fn)


__all__ = [
    "check_key",
    "check_spec",
    "check_structure",
    "check_train",
    "door_error",
    "guard_apply",
    "guard_init",
    "is_key",
    "quiet_during_checks",
    "raw",
    "shape_dims",
]
