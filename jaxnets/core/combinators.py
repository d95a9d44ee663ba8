"""The combinators: networks built from layers, themselves layers."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxnets.core.arguments import choice, count, received
from jaxnets.core.children import (
    _store,
    apply_child,
    apply_children,
    as_named_layers,
    check_layer,
    check_name,
    init_child,
    init_children,
)
from jaxnets.core.contract import Layer, Params, Spec, State, _prefix_errors, layer_error
from jaxnets.core.specs import as_spec, infer_output

_as_named_layers = as_named_layers


def named(name: str, layer: Layer) -> Layer:
    """Store ``layer`` under ``name`` in its parent combinator.

    Args:
      name: the key of the layer in its parent (non-empty, without ``/``).
      layer: the layer.

    Returns:
      A copy of ``layer`` with that name.

    Raises:
      TypeError: when ``name`` is not a str or ``layer`` is not a :class:`Layer`.
      ValueError: when ``name`` is empty or holds a ``/``.

    Example:
        >>> import jaxnets as jn
        >>> jn.named("logits", jn.Dense(10)).name
        'logits'
    """
    if isinstance(name, Layer) and isinstance(layer, str):
        raise TypeError(f"named: the name comes first: named({layer!r}, layer), got a Layer first")
    check_name("named", name, optional=False)
    check_layer("named", "layer", layer)
    return layer._replace(name=name)


def serial(*layers: Layer | tuple[str, Layer], name: str | None = None) -> Layer:
    """Compose layers in sequence: ``y = f_n(...f_2(f_1(x)))``.

    Children are stored under their names (``Dense`` -> ``dense_0``, ``dense_1``...),
    or under the names given as ``(name, layer)`` pairs.

    Args:
      *layers: the layers in order, each a :class:`Layer` or a ``(name, layer)`` pair.
      name: the key of the layer in its parent.

    Returns:
      The layer; its params and state are the children's, keyed by child name.

    Example:
        >>> import jax, jaxnets as jn
        >>> net = jn.serial(("hidden", jn.Dense(4)), jn.Tanh(), ("out", jn.Dense(1)))
        >>> _, params, _ = net.init(jax.random.key(0), (2, 3))
        >>> sorted(params)
        ['hidden', 'out']
    """
    check_name("serial", name)
    children = as_named_layers(layers, "serial")

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

    Args:
      *layers: one layer (or ``(name, layer)`` pair) per element of the input.
      name: the key of the layer in its parent.

    Returns:
      The layer; its params and state are the children's, keyed by child name.

    Example:
        >>> import jax, jaxnets as jn
        >>> net = jn.parallel(jn.Dense(2), jn.Dense(3))
        >>> spec, _, _ = net.init(jax.random.key(0), ((1, 4), (1, 5)))
        >>> [s.shape for s in spec]
        [(1, 2), (1, 3)]
    """
    check_name("parallel", name)
    children = as_named_layers(layers, "parallel")

    def _check(spec_or_x, what):
        if not isinstance(spec_or_x, (tuple, list)) or len(spec_or_x) != len(children):
            got = len(spec_or_x) if isinstance(spec_or_x, (tuple, list)) else "a single array"
            raise layer_error("parallel", f"expected a tuple of {len(children)} {what}, got {got}")

    def init(key, input_spec):
        specs = as_spec(input_spec)
        _check(specs, "input specs")
        outs, params, state = init_children(children, key, specs)
        return tuple(outs), params, state

    def apply(params, state, xs, *, key=None, train):
        _check(xs, "inputs")
        outs, new_state = apply_children(children, params, state, xs, key, train)
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

    Args:
      kind: the layer type shown in summaries and errors.
      fn: the function; the key and the training flag are ignored.
      name: the key of the layer in its parent.
      check: called with the input spec at init, to validate it (raise a LayerError).

    Returns:
      The layer (no params, no state).
    """
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"stateless: kind must be a non-empty str, got {received(kind)}")
    if not callable(fn):
        raise TypeError(f"{kind}: fn must be callable, got {received(fn)}")
    if check is not None and not callable(check):
        raise TypeError(f"{kind}: check must be callable or None, got {received(check)}")
    check_name(kind, name)

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

    Args:
      fn: the function ``fn(x) -> y``.
      name: the key of the layer in its parent.

    Returns:
      The layer (no params).

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> double = jn.Lambda(lambda x: 2 * x)
        >>> double.apply({}, {}, jnp.ones(2), train=False)[0]
        Array([2., 2.], dtype=float32)
    """
    return stateless("Lambda", fn, name=name)


def fan_out(n: int, name: str | None = None) -> Layer:
    """Copy the input into a tuple of ``n`` identical branches.

    Args:
      n: the number of copies (at least 1).
      name: the key of the layer in its parent.

    Returns:
      The layer (no params).

    Raises:
      TypeError: when ``n`` is not an int.
      ValueError: when ``n < 1``.
    """
    n = count("fan_out", "n", n)
    return stateless("FanOut", lambda x: (x,) * n, name=name)


def _check_tuple(kind: str):
    def check(spec):
        if not isinstance(spec, tuple) or not spec:
            raise layer_error(kind, f"expected a non-empty tuple of inputs, got {spec}")

    return check


def fan_in_concat(axis: int = -1, name: str | None = None) -> Layer:
    """Concatenate a tuple of inputs along ``axis`` (channels by default).

    Args:
      axis: the axis to join along; the inputs must agree on every other axis.
      name: the key of the layer in its parent.

    Returns:
      The layer (no params); init raises a LayerError for mismatched inputs.
    """

    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"fan_in_concat: axis must be an int, got {received(axis)}")
    axis = int(axis)

    def check(spec):
        _check_tuple("FanInConcat")(spec)
        if not all(isinstance(s, jax.ShapeDtypeStruct) for s in spec):
            raise layer_error("FanInConcat", f"expected a tuple of arrays, got {spec}")
        ranks = {len(s.shape) for s in spec}
        if len(ranks) != 1:
            raise layer_error(
                "FanInConcat", f"inputs of different ranks: {[s.shape for s in spec]}"
            )
        rank = ranks.pop()
        if not -rank <= axis < rank:
            what = "rank-0 (scalar) inputs have no axis to join" if rank == 0 else ""
            raise layer_error(
                "FanInConcat",
                f"axis {axis} is out of range for inputs of rank {rank}"
                f"{': ' + what if what else ''}, got shapes {[tuple(s.shape) for s in spec]}",
            )
        shapes = [list(s.shape) for s in spec]
        ax = axis % rank
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
    """Sum a tuple of inputs of the same shape elementwise.

    Args:
      name: the key of the layer in its parent.

    Returns:
      The layer (no params); init raises a LayerError for inputs of different shapes.
    """

    def check(spec):
        _check_tuple("FanInSum")(spec)
        if not all(isinstance(s, jax.ShapeDtypeStruct) for s in spec):
            raise layer_error("FanInSum", f"expected a tuple of arrays, got {spec}")
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

    Args:
      *layers: the branches, each a :class:`Layer` or a ``(name, layer)`` pair.
      merge: "concat" (along the last axis) or "sum".
      name: the key of the layer in its parent.

    Returns:
      The layer.

    Raises:
      ValueError: for any other ``merge``, or no branches.
    """
    choice("branches", "merge", merge, ("concat", "sum"))
    check_name("branches", name)
    children = as_named_layers(layers, "branches")
    combine = fan_in_concat() if merge == "concat" else fan_in_sum()

    def init(key, input_spec):
        spec = as_spec(input_spec)
        outs, params, state = init_children(children, key, [spec] * len(children))
        with _prefix_errors("merge"):
            out_spec, _, _ = combine.init(key, tuple(outs))
        return out_spec, params, state

    def apply(params, state, x, *, key=None, train):
        outs, new_state = apply_children(children, params, state, [x] * len(children), key, train)
        return combine.apply({}, {}, tuple(outs), key=None, train=train)[0], new_state

    return Layer(init, apply, "branches", name)


def residual(layer: Layer, shortcut: Layer | None = None, name: str | None = None) -> Layer:
    """``y = layer(x) + shortcut(x)``; the shortcut is the identity unless given.

    Params are ``{"main": ..., "shortcut": ...}``.

    Args:
      layer: the main branch.
      shortcut: a layer for the other branch (e.g. a projection); None is the identity.
      name: the key of the layer in its parent.

    Returns:
      The layer; init raises a LayerError when the branches' output shapes differ.

    Example:
        >>> import jax, jaxnets as jn
        >>> block = jn.residual(jn.serial(jn.Dense(3), jn.Relu()))
        >>> spec, params, _ = block.init(jax.random.key(0), (2, 3))
        >>> spec.shape, list(params)
        ((2, 3), ['main'])
    """
    check_layer("residual", "layer", layer)
    if shortcut is not None:
        check_layer("residual", "shortcut", shortcut)
    check_name("residual", name)
    children = [("main", layer)] + ([("shortcut", shortcut)] if shortcut is not None else [])

    def init(key, input_spec):
        spec = as_spec(input_spec)
        outs, params, state = init_children(children, key, [spec] * len(children))
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
