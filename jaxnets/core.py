"""The layer contract, shape specs, error reporting and the combinators.

A layer is a :class:`Layer`: a named tuple of two pure functions::

    layer.init(key, input_spec)             -> (output_spec, params, state)
    layer.apply(params, state, x, *, key, train) -> (y, new_state)

``params`` and ``state`` are nested dicts with readable names. Combinators
(:func:`serial`, :func:`parallel`, :func:`residual`, ...) build networks from
layers and are layers themselves.

Example:
    >>> import jax, jaxnets as jn
    >>> model = jn.serial(jn.Dense(8), jn.Relu(), jn.Dense(2))
    >>> out_spec, params, state = model.init(jax.random.key(0), (4, 3))
    >>> out_spec.shape, sorted(params)
    ((4, 2), ['dense_0', 'dense_1'])
    >>> y, state = model.apply(params, state, jax.numpy.ones((4, 3)), train=False)
    >>> y.shape
    (4, 2)
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

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


class Layer(NamedTuple):
    """A layer: ``init`` and ``apply`` plus a display ``kind`` and an optional ``name``.

    ``kind`` is the layer type shown in summaries ("Dense", "serial"); ``name`` is
    the key the enclosing combinator stores this layer's params and state under.
    When ``name`` is None the combinator derives one from ``kind`` ("dense_0").
    """

    init: InitFn
    apply: ApplyFn
    kind: str
    name: str | None = None

    def named(self, name: str) -> Layer:
        """This layer stored under ``name`` in its parent."""
        return named(name, self)


# --------------------------------------------------------------------------- errors


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
        except (LayerError, LayerTypeError) as e:
            raise type(e)(f"{path}/{e}") from None
        except TypeError as e:
            raise LayerTypeError(f"{path}: {e}") from e
        except ValueError as e:
            raise LayerError(f"{path}: {e}") from e

    return ctx()


def layer_error(kind: str, message: str) -> LayerError:
    """A ValueError for layer ``kind`` (the path is prefixed by the combinators)."""
    return LayerError(f"{kind}: {message}")


def param(params: Mapping[str, Any], name: str, kind: str, shape: tuple[int, ...] | None = None):
    """Fetch ``params[name]`` with a clear error if it is missing or mis-shaped."""
    if not isinstance(params, Mapping) or name not in params:
        got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise layer_error(kind, f"missing parameter '{name}'; the params given have keys {got}")
    value = params[name]
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise layer_error(
            kind, f"parameter '{name}' has shape {tuple(value.shape)}, expected {tuple(shape)}"
        )
    return value


# --------------------------------------------------------------------------- specs


def _is_shape(x: Any) -> bool:
    return isinstance(x, (tuple, list)) and all(
        isinstance(d, int) and not isinstance(d, bool) for d in x
    )


def as_spec(spec: SpecLike, dtype: Any = jnp.float32) -> Spec:
    """Normalise a shape, array or ShapeDtypeStruct (or a tuple of them) to specs.

    Example:
        >>> as_spec((2, 3))
        ShapeDtypeStruct(shape=(2, 3), dtype=float32)
    """
    if isinstance(spec, jax.ShapeDtypeStruct):
        return spec
    if _is_shape(spec):
        return jax.ShapeDtypeStruct(tuple(spec), jnp.dtype(dtype))
    if hasattr(spec, "shape") and hasattr(spec, "dtype"):
        return jax.ShapeDtypeStruct(tuple(spec.shape), spec.dtype)
    if isinstance(spec, (tuple, list)):
        return tuple(as_spec(s, dtype) for s in spec)
    if isinstance(spec, Mapping):
        return {k: as_spec(v, dtype) for k, v in spec.items()}
    raise TypeError(
        f"input_spec must be a shape tuple, a jax.ShapeDtypeStruct, an array or a tuple "
        f"of those; got {type(spec).__name__}: {spec!r}"
    )


def infer_output(apply: ApplyFn, params: Params, state: State, spec: Spec) -> Spec:
    """The output spec of ``apply`` in inference mode, by abstract evaluation (no FLOPs)."""

    def run(p, s, x):
        return apply(p, s, x, key=None, train=False)[0]

    return jax.eval_shape(run, params, state, spec)


def check_rank(kind: str, spec: jax.ShapeDtypeStruct, min_rank: int, what: str = "") -> None:
    """Raise a LayerError if ``spec`` has fewer than ``min_rank`` dimensions."""
    if not isinstance(spec, jax.ShapeDtypeStruct):
        raise layer_error(kind, f"expected a single array input, got {type(spec).__name__}")
    if len(spec.shape) < min_rank:
        raise layer_error(
            kind,
            f"expected an input of rank >= {min_rank}{what}, got shape {tuple(spec.shape)}",
        )


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values now (not a tracer inside ``jit``/``grad``/``vmap``), so a
    layer can validate data eagerly and document what happens under ``jit`` instead."""
    return not isinstance(x, jax.core.Tracer)


def check_floating(kind: str, x: Any) -> None:
    """Raise a TypeError naming ``kind`` if ``x`` is not a floating-point array."""
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise LayerTypeError(f"{kind}: expected a floating-point input, got dtype {x.dtype}")


def along_last(v: Array, ndim: int) -> Array:
    """Reshape a per-feature vector ``(F,)`` to broadcast against a rank-``ndim`` array
    with features last, without relying on implicit rank promotion."""
    return v.reshape((1,) * (ndim - 1) + v.shape)


# --------------------------------------------------------------------------- keys


def name_key(key: Array | None, name: str) -> Array | None:
    """Derive a child's key deterministically from its name (stable under insertions)."""
    if key is None:
        return None
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)


# --------------------------------------------------------------------------- recording


class InitRecord(NamedTuple):
    """What :func:`record_init` notes about one sub-layer: counts, not arrays."""

    path: str
    kind: str
    output_spec: Spec
    param_count: int
    state_count: int
    leaf: bool


_RECORDER: contextvars.ContextVar[list[InitRecord] | None] = contextvars.ContextVar(
    "jaxnets_init_recorder", default=None
)
_PATH: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "jaxnets_init_path", default=()
)


@contextlib.contextmanager
def record_init() -> Iterator[list[InitRecord]]:
    """Collect one :class:`InitRecord` per sub-layer while ``init`` runs (for summaries).

    This is host-side bookkeeping during initialisation only; ``apply`` never sees it.
    """
    records: list[InitRecord] = []
    token = _RECORDER.set(records)
    try:
        yield records
    finally:
        _RECORDER.reset(token)


def init_child(name: str, layer: Layer, key: Array, spec: Spec, leaf: bool | None = None):
    """Initialise ``layer`` as child ``name`` of a combinator: key, path and errors."""
    token = _PATH.set(_PATH.get() + (name,))
    records = _RECORDER.get()
    slot = None
    if records is not None:  # reserve the slot so parents are listed before children
        slot = len(records)
        records.append(None)
    try:
        with _prefix_errors(name):
            out_spec, params, state = layer.init(name_key(key, name), spec)
        if records is not None:
            is_leaf = layer.kind not in COMBINATOR_KINDS if leaf is None else leaf
            records[slot] = InitRecord(
                "/".join(_PATH.get()),
                layer.kind,
                out_spec,
                count_params(params),
                count_params(state),
                is_leaf,
            )
        return out_spec, params, state
    finally:
        _PATH.reset(token)


def apply_child(name: str, layer: Layer, params: Params, state: State, x, key, train):
    """Apply child ``name``: its sub-dicts, its key, and errors prefixed with its name."""
    with _prefix_errors(name):
        return layer.apply(
            params.get(name, {}), state.get(name, {}), x, key=name_key(key, name), train=train
        )


def _store(tree: dict, name: str, value: dict) -> None:
    if value:
        tree[name] = value


#: Kinds whose children are listed separately in summaries.
COMBINATOR_KINDS = {"serial", "parallel", "residual", "branches"}


# --------------------------------------------------------------------------- combinators


def _as_named_layers(layers: Sequence[Layer | tuple[str, Layer]], where: str) -> list:
    """Give every child a unique name: its own, or kind_index counted per kind."""
    named_layers: list[tuple[str, Layer]] = []
    counts: dict[str, int] = {}
    for item in layers:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, layer = item
        elif isinstance(item, Layer):
            layer = item
            name = layer.name
            if name is None:
                base = layer.kind.lower()
                name = f"{base}_{counts.get(base, 0)}"
                counts[base] = counts.get(base, 0) + 1
        else:
            raise TypeError(
                f"{where}: expected Layer or (name, Layer) items, got {type(item).__name__}"
            )
        if not isinstance(layer, Layer):
            raise TypeError(f"{where}: '{name}' is a {type(layer).__name__}, not a Layer")
        if "/" in name or not name:
            raise ValueError(f"{where}: layer name {name!r} must be non-empty without '/'")
        named_layers.append((name, layer))
    names = [n for n, _ in named_layers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{where}: duplicate layer names {duplicates}; give each a unique name")
    return named_layers


def named(name: str, layer: Layer) -> Layer:
    """Store ``layer`` under ``name`` in its parent combinator.

    Example:
        >>> import jaxnets as jn
        >>> jn.named("logits", jn.Dense(10)).name
        'logits'
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"named: expected a Layer, got {type(layer).__name__}")
    return layer._replace(name=name)


def serial(*layers: Layer | tuple[str, Layer], name: str | None = None) -> Layer:
    """Compose layers in sequence: ``y = f_n(...f_2(f_1(x)))``.

    Children are stored under their names (``Dense`` -> ``dense_0``, ``dense_1``...),
    or under the names given as ``(name, layer)`` pairs.

    Example:
        >>> import jax, jaxnets as jn
        >>> net = jn.serial(("hidden", jn.Dense(4)), jn.Tanh(), ("out", jn.Dense(1)))
        >>> _, params, _ = net.init(jax.random.key(0), (2, 3))
        >>> sorted(params)
        ['hidden', 'out']
    """
    children = _as_named_layers(layers, "serial")

    def init(key, input_spec):
        spec = as_spec(input_spec)
        params: Params = {}
        state: State = {}
        for child_name, child in children:
            spec, p, s = init_child(child_name, child, key, spec)
            _store(params, child_name, p)
            _store(state, child_name, s)
        return spec, params, state

    def apply(params, state, x, *, key=None, train):
        new_state: State = {}
        for child_name, child in children:
            x, s = apply_child(child_name, child, params, state, x, key, train)
            _store(new_state, child_name, s)
        return x, new_state

    return Layer(init, apply, "serial", name)


def parallel(*layers: Layer | tuple[str, Layer], name: str | None = None) -> Layer:
    """Apply the i-th layer to the i-th element of a tuple input; returns a tuple.

    Example:
        >>> import jax, jaxnets as jn
        >>> net = jn.parallel(jn.Dense(2), jn.Dense(3))
        >>> spec, _, _ = net.init(jax.random.key(0), ((1, 4), (1, 5)))
        >>> [s.shape for s in spec]
        [(1, 2), (1, 3)]
    """
    children = _as_named_layers(layers, "parallel")

    def _check(spec_or_x, what):
        if not isinstance(spec_or_x, (tuple, list)) or len(spec_or_x) != len(children):
            got = len(spec_or_x) if isinstance(spec_or_x, (tuple, list)) else "a single array"
            raise layer_error("parallel", f"expected a tuple of {len(children)} {what}, got {got}")

    def init(key, input_spec):
        specs = as_spec(input_spec)
        _check(specs, "input specs")
        params: Params = {}
        state: State = {}
        outs = []
        for (child_name, child), spec in zip(children, specs, strict=True):
            out, p, s = init_child(child_name, child, key, spec)
            outs.append(out)
            _store(params, child_name, p)
            _store(state, child_name, s)
        return tuple(outs), params, state

    def apply(params, state, xs, *, key=None, train):
        _check(xs, "inputs")
        new_state: State = {}
        outs = []
        for (child_name, child), x in zip(children, xs, strict=True):
            y, s = apply_child(child_name, child, params, state, x, key, train)
            outs.append(y)
            _store(new_state, child_name, s)
        return tuple(outs), new_state

    return Layer(init, apply, "parallel", name)


def stateless(
    kind: str,
    fn: Callable[[Any], Any],
    *,
    name: str | None = None,
    check: Callable[[Spec], None] | None = None,
) -> Layer:
    """A parameter-free layer from a pure function ``fn(x) -> y`` (mode-independent).

    ``check(input_spec)`` may validate the input at init and raise a LayerError.
    """

    def apply(params, state, x, *, key=None, train):
        return fn(x), {}

    def init(key, input_spec):
        spec = as_spec(input_spec)
        if check is not None:
            check(spec)
        return infer_output(apply, {}, {}, spec), {}, {}

    return Layer(init, apply, kind, name)


def Lambda(fn: Callable[[Any], Any], name: str | None = None) -> Layer:
    """A layer from any pure function of the input.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> double = jn.Lambda(lambda x: 2 * x)
        >>> double.apply({}, {}, jnp.ones(2), train=False)[0]
        Array([2., 2.], dtype=float32)
    """
    return stateless("Lambda", fn, name=name)


def fan_out(n: int, name: str | None = None) -> Layer:
    """Copy the input into a tuple of ``n`` identical branches."""
    if n < 1:
        raise ValueError(f"fan_out: n must be >= 1, got {n}")
    return stateless("FanOut", lambda x: (x,) * n, name=name)


def _check_tuple(kind: str):
    def check(spec):
        if not isinstance(spec, tuple) or not spec:
            raise layer_error(kind, f"expected a non-empty tuple of inputs, got {spec}")

    return check


def fan_in_concat(axis: int = -1, name: str | None = None) -> Layer:
    """Concatenate a tuple of inputs along ``axis`` (channels by default)."""

    def check(spec):
        _check_tuple("FanInConcat")(spec)
        ranks = {len(s.shape) for s in spec}
        if len(ranks) != 1:
            raise layer_error(
                "FanInConcat", f"inputs of different ranks: {[s.shape for s in spec]}"
            )
        shapes = [list(s.shape) for s in spec]
        ax = axis % len(shapes[0])
        for s in shapes:
            s[ax] = -1
        if any(s != shapes[0] for s in shapes):
            raise layer_error(
                "FanInConcat",
                f"shapes must agree except on axis {axis}: {[tuple(s.shape) for s in spec]}",
            )

    return stateless(
        "FanInConcat", lambda xs: jnp.concatenate(xs, axis=axis), name=name, check=check
    )


def fan_in_sum(name: str | None = None) -> Layer:
    """Sum a tuple of inputs of the same shape elementwise."""

    def check(spec):
        _check_tuple("FanInSum")(spec)
        if len({tuple(s.shape) for s in spec}) != 1:
            raise layer_error(
                "FanInSum", f"inputs must have one shape, got {[tuple(s.shape) for s in spec]}"
            )

    def add(xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    return stateless("FanInSum", add, name=name, check=check)


def branches(
    *layers: Layer | tuple[str, Layer], merge: str = "concat", name: str | None = None
) -> Layer:
    """Run every branch on the same input and merge by ``"concat"`` (channels) or ``"sum"``.

    The building block of Inception modules; params are ``{branch_name: ...}``.
    """
    if merge not in ("concat", "sum"):
        raise ValueError(f"branches: merge must be 'concat' or 'sum', got {merge!r}")
    children = _as_named_layers(layers, "branches")
    combine = fan_in_concat() if merge == "concat" else fan_in_sum()

    def init(key, input_spec):
        spec = as_spec(input_spec)
        params: Params = {}
        state: State = {}
        outs = []
        for child_name, child in children:
            out, p, s = init_child(child_name, child, key, spec)
            outs.append(out)
            _store(params, child_name, p)
            _store(state, child_name, s)
        with _prefix_errors("merge"):
            out_spec, _, _ = combine.init(key, tuple(outs))
        return out_spec, params, state

    def apply(params, state, x, *, key=None, train):
        new_state: State = {}
        outs = []
        for child_name, child in children:
            y, s = apply_child(child_name, child, params, state, x, key, train)
            outs.append(y)
            _store(new_state, child_name, s)
        return combine.apply({}, {}, tuple(outs), key=None, train=train)[0], new_state

    return Layer(init, apply, "branches", name)


def residual(layer: Layer, shortcut: Layer | None = None, name: str | None = None) -> Layer:
    """``y = layer(x) + shortcut(x)``; the shortcut is the identity unless given.

    Params are ``{"main": ..., "shortcut": ...}``.

    Example:
        >>> import jax, jaxnets as jn
        >>> block = jn.residual(jn.serial(jn.Dense(3), jn.Relu()))
        >>> spec, params, _ = block.init(jax.random.key(0), (2, 3))
        >>> spec.shape, list(params)
        ((2, 3), ['main'])
    """
    children = [("main", layer)] + ([("shortcut", shortcut)] if shortcut is not None else [])

    def init(key, input_spec):
        spec = as_spec(input_spec)
        params: Params = {}
        state: State = {}
        outs = []
        for child_name, child in children:
            out, p, s = init_child(child_name, child, key, spec)
            outs.append(out)
            _store(params, child_name, p)
            _store(state, child_name, s)
        if shortcut is None:
            outs.append(spec)
        if tuple(outs[0].shape) != tuple(outs[1].shape):
            raise layer_error(
                "residual",
                f"the main branch gives shape {tuple(outs[0].shape)} but the shortcut gives "
                f"{tuple(outs[1].shape)}; pass a projection as shortcut=",
            )
        return outs[0], params, state

    def apply(params, state, x, *, key=None, train):
        new_state: State = {}
        y, s = apply_child("main", layer, params, state, x, key, train)
        _store(new_state, "main", s)
        if shortcut is None:
            return y + x, new_state
        z, s = apply_child("shortcut", shortcut, params, state, x, key, train)
        _store(new_state, "shortcut", s)
        return y + z, new_state

    return Layer(init, apply, "residual", name)


# --------------------------------------------------------------------------- utilities


def init_model(model: Layer, key: Array, input_spec: SpecLike):
    """``model.init`` with errors prefixed by the model's name or kind."""
    with _prefix_errors(model.name or model.kind):
        return model.init(key, as_spec(input_spec))


def count_params(tree: PyTree) -> int:
    """Total number of scalars in a pytree of arrays or ShapeDtypeStructs."""
    return sum(math.prod(x.shape) for x in jax.tree.leaves(tree) if hasattr(x, "shape"))


def shape_tree(model: Layer, input_spec: SpecLike, key: Array | None = None):
    """``(output_spec, params, state)`` as ShapeDtypeStructs, without allocating weights."""
    key = jax.random.key(0) if key is None else key
    spec = as_spec(input_spec)
    return jax.eval_shape(lambda k: model.init(k, spec), key)


def _path_str(path) -> str:
    return "/".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)


def check_tree_matches(expected: PyTree, actual: PyTree, what: str = "params") -> None:
    """Check ``actual`` has the keys, shapes and dtypes of ``expected``.

    Raises a ValueError naming the first mismatching path and both shapes.
    """
    exp = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
    act = dict(jax.tree_util.tree_flatten_with_path(actual)[0])
    exp_paths = {_path_str(p): v for p, v in exp.items()}
    act_paths = {_path_str(p): v for p, v in act.items()}
    for path, e in exp_paths.items():
        if path not in act_paths:
            raise ValueError(f"{what}: missing '{path}' (expected shape {tuple(e.shape)})")
        a = act_paths[path]
        if tuple(a.shape) != tuple(e.shape):
            raise ValueError(
                f"{what}: '{path}' has shape {tuple(a.shape)}, the model expects {tuple(e.shape)}"
            )
        if jnp.dtype(a.dtype) != jnp.dtype(e.dtype):
            raise ValueError(f"{what}: '{path}' has dtype {a.dtype}, the model expects {e.dtype}")
    extra = sorted(set(act_paths) - set(exp_paths))
    if extra:
        raise ValueError(f"{what}: unexpected entries the model does not have: {extra[:5]}")
