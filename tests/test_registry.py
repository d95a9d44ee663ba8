"""The layer registry (layer_cases.py) is complete: every public layer and every registered
implementation of every op is exercised by some case.

* ``test_every_public_layer_has_a_case``: each public constructor of a Layer (or a recurrent
  Cell) exported by ``jaxnets`` is called by some case's ``make`` (or its layer kind shows
  up in some case's model), unless :data:`EXCLUDED` says why not.
* ``test_every_implementation_is_reached``: tracing the cases (init, apply in each mode and
  ``jax.grad``) chooses every implementation of every op in ``jaxnets._impl.registry``.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing

import jax
import jax.numpy as jnp
import pytest
from layer_cases import LayerCase, all_cases
from test_layers_generic import make_input, modes, spec_of

import jaxnets as jn
from jaxnets._impl.choose import record_choices
from jaxnets._impl.context import default_platform
from jaxnets._impl.registry import implementations, ops
from jaxnets.core import Layer, record_init
from jaxnets.layers import Cell

CASES = all_cases()

#: Public names (relative to ``jaxnets``; ``pkg.*`` for a whole subpackage) that return a
#: Layer but need no registry case, each with the reason.
EXCLUDED = {
    "named": "renames a layer (layer._replace(name=...)); it builds no layer of its own",
    "stateless": "the factory behind Activation, Lambda, fan_out and fan_in_*: covered by them",
    "models.*": "the model zoo: whole networks, tested in tests/test_models_zoo.py",
    "gan.digits_judge_trunk": "a model (the judge's trunk), tested in tests/test_gan_judge.py",
}

#: The public namespaces searched for constructors, by prefix ("" is ``jaxnets`` itself).
_NAMESPACES = {"": jn, "core.": jn.core, "layers.": jn.layers}
_NAMESPACES.update(
    {f"{n}.": getattr(jn, n) for n in jn.__all__ if isinstance(getattr(jn, n), types.ModuleType)}
)


def _returns_layer(obj) -> bool:
    if not inspect.isfunction(obj):
        return False
    try:
        returned = typing.get_type_hints(obj).get("return")
    except Exception:  # unresolvable annotations: not one of ours
        return False
    return returned in (Layer, Cell)


def _public_names(module) -> list[str]:
    names = getattr(module, "__all__", None)
    return list(names) if names is not None else [n for n in dir(module) if not n.startswith("_")]


@functools.cache
def public_constructors() -> dict[str, tuple[object, list[tuple[types.ModuleType, str]]]]:
    """``{public name: (function, [(namespace, attribute), ...])}``: every public function
    annotated to return a Layer or a Cell, under its shortest public name (one entry per
    function, with every namespace attribute that holds it)."""
    found: dict[int, tuple[str, object, list]] = {}
    for prefix, module in _NAMESPACES.items():
        for attr in _public_names(module):
            obj = getattr(module, attr, None)
            if not _returns_layer(obj):
                continue
            name = prefix + attr
            if id(obj) in found:
                first, _, where = found[id(obj)]
                where.append((module, attr))
                if len(name) < len(first):
                    found[id(obj)] = (name, obj, where)
            else:
                found[id(obj)] = (name, obj, [(module, attr)])
    return {name: (obj, where) for name, obj, where in found.values()}


def _excluded(name: str) -> str | None:
    for pattern, reason in EXCLUDED.items():
        if name == pattern or (pattern.endswith(".*") and name.startswith(pattern[:-1])):
            return reason
    return None


def _norm(name: str) -> str:
    return name.rsplit(".", 1)[-1].replace("_", "").lower()


def _kinds(layer: Layer, case: LayerCase) -> set[str]:
    """The kind of ``layer`` and of every sub-layer its init goes through."""
    with record_init() as records:
        jax.eval_shape(lambda k: layer.init(k, spec_of(case)), jax.random.key(0))
    return {layer.kind} | {r.kind for r in records if r is not None}


def test_exclusions_name_real_constructors_and_give_reasons():
    names = public_constructors()
    for pattern, reason in EXCLUDED.items():
        assert isinstance(reason, str) and reason.strip(), f"EXCLUDED[{pattern!r}] needs a reason"
        if pattern.endswith(".*"):
            assert any(n.startswith(pattern[:-1]) for n in names), f"stale exclusion {pattern!r}"
        else:
            assert pattern in names, f"EXCLUDED names {pattern!r}, not a public layer constructor"


def test_the_constructor_search_finds_the_known_layers():
    """A guard on the search itself (annotations and namespaces)."""
    names = public_constructors()
    for expected in ("Dense", "Conv", "LSTM", "serial", "residual", "repeat", "remat", "Tanh"):
        assert expected in names, f"{expected} not found among {sorted(names)}"
    assert "data.Augment" in names
    assert "Layer" not in names and "summary" not in names and "init_model" not in names


def test_every_public_layer_has_a_case(monkeypatch):
    constructors = public_constructors()
    called: set[str] = set()

    def spy(name, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            called.add(name)
            return fn(*args, **kwargs)

        return wrapper

    for name, (fn, where) in constructors.items():
        for module, attr in where:
            monkeypatch.setattr(module, attr, spy(name, fn))
    kinds: set[str] = set()
    for case in CASES:
        kinds |= _kinds(case.make(), case)
        if case.reference is not None:
            kinds |= _kinds(case.reference(), case)
    monkeypatch.undo()
    assert "Dense" in called, "the spies saw no call: do the cases still build layers as jn.X?"
    seen = {_norm(k) for k in kinds}
    missing = sorted(
        name
        for name in constructors
        if _excluded(name) is None and name not in called and _norm(name) not in seen
    )
    assert not missing, (
        f"public layers without a registry case: {missing}. Add a LayerCase that builds each "
        f"to the matching tests/cases_<family>.py (or, if it is no layer, add it to EXCLUDED in "
        f"{__name__} with the reason)"
    )


def _float_sum(tree) -> jax.Array:
    leaves = [a for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.floating)]
    return sum((jnp.sum(a.astype(jnp.float32)) for a in leaves), jnp.float32(0))


def _trace(layer: Layer, case: LayerCase) -> None:
    """Trace (abstractly: nothing runs) init, apply in each mode and the gradient."""
    _, params, state = jax.eval_shape(lambda k: layer.init(k, spec_of(case)), jax.random.key(0))
    x = jax.eval_shape(lambda: make_input(case))
    for train in modes(case):

        def run(p, s, x, train=train):
            return layer.apply(p, s, x, key=jax.random.key(2), train=train)

        jax.eval_shape(run, params, state, x)
        has_float_params = any(
            jnp.issubdtype(a.dtype, jnp.floating) for a in jax.tree.leaves(params)
        )
        if case.check_grads and has_float_params:
            jax.eval_shape(
                jax.grad(lambda p, s, x, run=run: _float_sum(run(p, s, x)[0])), params, state, x
            )


@functools.cache
def reached() -> dict[tuple[str, str], list[str]]:
    """``{(op, impl): [case ids]}`` for every choice made while tracing the cases."""
    out: dict[tuple[str, str], list[str]] = {}
    for case in CASES:
        for make in (case.make, case.reference):
            if make is None:
                continue
            with record_choices() as choices:
                _trace(make(), case)
            for c in choices:
                ids = out.setdefault((c.op, c.impl), [])
                if case.id not in ids:
                    ids.append(case.id)
    return out


def test_every_implementation_is_reached():
    """Every implementation that can serve this machine's platform is reached by a case
    (one for NVIDIA GPUs only, such as cuDNN attention, is reached where one runs)."""
    got = reached()
    here = default_platform()
    unreached = [
        (op, impl.name)
        for op in ops()
        for impl in implementations(op)
        if (op, impl.name) not in got and (impl.platforms is None or here in impl.platforms)
    ]
    assert not unreached, (
        f"no registry case reaches these (op, impl) pairs: {unreached}. Add a case that builds "
        f"the layer with impl=<name> (tests/cases_impl.py) or that uses the op's layer"
    )


@pytest.mark.parametrize("op", sorted(ops()))
def test_choices_name_registered_implementations(op):
    """What the cases record is what the registry holds (no unknown names)."""
    names = {impl.name for impl in implementations(op)}
    recorded = {impl for (o, impl) in reached() if o == op}
    assert recorded <= names, f"{op}: recorded {sorted(recorded - names)} not in {sorted(names)}"
