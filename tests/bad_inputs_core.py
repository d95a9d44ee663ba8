"""Bad inputs to the core API: specs and keys given to init ("specs"), the arguments of
apply ("apply"), the combinators and repeat/remat ("combinators") and the choice of an
implementation ("impl")."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from bad_input import Bad

import jaxnets as jn

_K = jax.random.key(0)
_X = jnp.ones((2, 3))
T, V, LE = TypeError, ValueError, jn.LayerError


def _case(area, name, call, raises, *mentions):
    return Bad(area, name, call, raises, tuple(mentions))


def _mlp():
    return jn.serial(jn.Dense(4), jn.Relu(), jn.Dense(2))


def _bn_model():
    return jn.serial(jn.Dense(4), jn.BatchNorm())


def _apply(model, edit=None, *, swap=False, **kwargs):
    """Init ``model`` on ``_X``, let ``edit(params, state)`` spoil the trees, then apply."""
    _, params, state = model.init(_K, _X.shape)
    if edit is not None:
        edit(params, state)
    if swap:
        params, state = state, params
    kwargs.setdefault("train", False)
    return model.apply(params, state, _X, **kwargs)


def _extra_top(p, s):
    p["dense_9"] = {"kernel": jnp.zeros((3, 4))}


def _misspelt(p, s):
    p["dense_0"]["kernl"] = p["dense_0"].pop("kernel")


def _extra_nested_mlp():
    model = jn.models.mlp((4,), 2)
    _, params, state = model.init(_K, _X.shape)
    params["hidden_0"]["dense"]["scale"] = jnp.ones(4)
    return model.apply(params, state, _X, train=False)


def _extra_state(p, s):
    s["batchnorm_0"]["count"] = jnp.zeros(())


def _no_state():
    model = _bn_model()
    _, params, _ = model.init(_K, _X.shape)
    return model.apply(params, {}, _X, train=False)


def _bn_alone_no_state():
    bn = jn.BatchNorm()
    _, params, _ = bn.init(_K, _X.shape)
    return bn.apply(params, {}, _X, train=False)


def _relu_with_params():
    return jn.Relu().apply({"w": jnp.ones(3)}, {}, _X, train=False)


def _params_of_other_model():
    _, params, state = _mlp().init(_K, _X.shape)
    other = jn.serial(("hidden", jn.Dense(4)), jn.Relu(), ("out", jn.Dense(2)))
    return other.apply(params, state, _X, train=False)


def _extra_in_repeat():
    net = jn.repeat(jn.residual(jn.Dense(3)), 2)
    _, params, state = net.init(_K, _X.shape)
    params["main"]["bias2"] = params["main"]["bias"]
    return net.apply(params, state, _X, train=False)


def _extra_in_remat():
    net = jn.serial(("block", jn.remat(jn.serial(jn.Dense(3), jn.Relu()))))
    _, params, state = net.init(_K, _X.shape)
    params["block"]["dense_1"] = params["block"]["dense_0"]
    return net.apply(params, state, _X, train=False)


def _extra_in_parallel():
    net = jn.parallel(jn.Dense(2), jn.Dense(3))
    _, params, state = net.init(_K, ((2, 3), (2, 4)))
    params["dense_1"]["gain"] = jnp.ones(3)
    return net.apply(params, state, (_X, jnp.ones((2, 4))), train=False)


def _shortcut_without_one():
    net = jn.residual(jn.Dense(3))
    _, params, state = net.init(_K, _X.shape)
    params["shortcut"] = {"kernel": jnp.eye(3)}
    return net.apply(params, state, _X, train=False)


def _tiled_on_overlapping_windows():
    pool = jn.MaxPool(3, 2, impl="tiled")
    x = jnp.ones((1, 7, 7, 2))
    _, params, state = pool.init(_K, x.shape)
    return pool.apply(params, state, x, train=False)


def _while_loop_without_remat():
    net = jn.repeat(jn.residual(jn.Dense(3)), 2, remat=False, impl="while_loop")
    _, params, state = net.init(_K, _X.shape)
    return jax.grad(lambda p: net.apply(p, state, _X, train=True)[0].sum())(params)


_S, _A, _C, _I = "specs", "apply", "combinators", "impl"

CASES = [
    # ---- specs and keys given to init
    _case(
        _S,
        "init shape with a float dim",
        lambda: jn.Dense(3).init(_K, (2, 4.0)),
        T,
        "Dense",
        "dim 1",
        "4.0",
    ),
    _case(
        _S,
        "init shape with a bool dim",
        lambda: jn.Dense(3).init(_K, (True, 4)),
        T,
        "dim 0",
        "True",
        "positive int",
    ),
    _case(
        _S,
        "init shape with a zero batch",
        lambda: _mlp().init(_K, (0, 3)),
        V,
        "serial",
        "dim 0",
        "got 0",
    ),
    _case(
        _S,
        "init shape with a negative dim",
        lambda: _mlp().init(_K, (2, -3)),
        V,
        "dim 1",
        "-3",
        "positive int",
    ),
    _case(
        _S,
        "init shape with None for the batch",
        lambda: _mlp().init(_K, (None, 3)),
        T,
        "dim 0",
        "None",
    ),
    _case(
        _S,
        "as_spec shape with a zero dim",
        lambda: jn.as_spec((3, 0)),
        V,
        "input_spec",
        "dim 1",
        "0",
    ),
    _case(
        _S,
        "shape_tree shape with a float dim",
        lambda: jn.shape_tree(_mlp(), (2, 3.5)),
        T,
        "input_spec",
        "3.5",
    ),
    _case(
        _S,
        "summary shape with a zero batch",
        lambda: jn.summary(_mlp(), (0, 3), print_fn=None),
        V,
        "dim 0",
        "got 0",
    ),
    _case(
        _S,
        "init_model shape with a negative batch",
        lambda: jn.init_model(_mlp(), _K, (-1, 3)),
        V,
        "dim 0",
        "-1",
    ),
    _case(
        _S,
        "init on an empty array",
        lambda: _mlp().init(_K, jnp.zeros((0, 3))),
        V,
        "dim 0",
        "(0, 3)",
    ),
    _case(
        _S,
        "init on a ShapeDtypeStruct with a zero dim",
        lambda: _mlp().init(_K, jax.ShapeDtypeStruct((2, 0), jnp.float32)),
        V,
        "dim 1",
        "(2, 0)",
    ),
    _case(
        _S,
        "init tuple spec with a zero dim in one input",
        lambda: jn.parallel(jn.Dense(2), jn.Dense(2)).init(_K, ((2, 3), (0, 3))),
        V,
        "parallel",
        "dim 0",
        "(0, 3)",
    ),
    _case(
        _S,
        "init spec given as a string",
        lambda: jn.Dense(2).init(_K, "32x3"),
        T,
        "input_spec",
        "'32x3'",
    ),
    _case(
        _S,
        "init key is an int seed",
        lambda: jn.Dense(3).init(0, (2, 3)),
        T,
        "Dense",
        "key must be a JAX PRNG key",
        "got 0",
    ),
    _case(_S, "init key is None", lambda: _mlp().init(None, (2, 3)), T, "serial", "key", "None"),
    _case(
        _S,
        "init key is a float array",
        lambda: _mlp().init(jnp.zeros(2), (2, 3)),
        T,
        "key",
        "float32",
    ),
    _case(
        _S,
        "init key is a batch of keys",
        lambda: _mlp().init(jax.random.split(_K, 3), (2, 3)),
        T,
        "key",
        "shape (3,)",
    ),
    _case(
        _S,
        "init key is uint32 of the wrong shape",
        lambda: _mlp().init(jnp.zeros(3, jnp.uint32), (2, 3)),
        T,
        "key",
        "uint32",
        "(3,)",
    ),
    _case(
        _S,
        "init_model key is an int",
        lambda: jn.init_model(_mlp(), 42, (2, 3)),
        T,
        "serial",
        "key",
        "42",
    ),
    _case(
        _S,
        "shape_tree key is an int",
        lambda: jn.shape_tree(_mlp(), (2, 3), key=1),
        T,
        "key",
        "got 1",
    ),
    _case(
        _S,
        "init_model of a layer constructor",
        lambda: jn.init_model(jn.Dense, _K, (2, 3)),
        T,
        "init_model",
        "model must be a Layer",
    ),
    _case(
        _S,
        "summary of a model name",
        lambda: jn.summary("mlp", (2, 3)),
        T,
        "summary",
        "model",
        "'mlp'",
    ),
    _case(
        _S,
        "summary print_fn is a string",
        lambda: jn.summary(_mlp(), (2, 3), print_fn="stdout"),
        T,
        "print_fn",
        "'stdout'",
    ),
    # ---- the arguments of apply
    _case(
        _A,
        "train is the string 'False'",
        lambda: _apply(jn.serial(jn.Dense(4), jn.Dropout(0.5)), key=_K, train="False"),
        T,
        "serial",
        "train must be True or False",
        "'False'",
    ),
    _case(_A, "train is an int", lambda: _apply(_mlp(), train=1), T, "train", "got 1"),
    _case(_A, "train is None", lambda: _apply(_mlp(), train=None), T, "train", "None"),
    _case(
        _A,
        "train is a JAX array",
        lambda: _apply(_mlp(), train=jnp.array(True)),
        T,
        "train",
        "dtype bool",
    ),
    _case(
        _A,
        "train is traced under jit",
        lambda: jax.jit(lambda t: _apply(_mlp(), train=t))(True),
        T,
        "train",
        "static_argnames",
    ),
    _case(
        _A,
        "train left out",
        lambda: _mlp().apply({}, {}, _X),
        T,
        "serial",
        "train=True or train=False",
    ),
    _case(
        _A,
        "Dropout train is a string",
        lambda: jn.Dropout(0.5).apply({}, {}, _X, key=_K, train="no"),
        T,
        "Dropout",
        "train",
        "'no'",
    ),
    _case(
        _A,
        "apply key is an int seed",
        lambda: _apply(_mlp(), key=0),
        T,
        "key must be a JAX PRNG key",
        "got 0",
    ),
    _case(
        _A,
        "apply key is a float array",
        lambda: _apply(_mlp(), key=jnp.zeros(2)),
        T,
        "key",
        "float32",
    ),
    _case(
        _A,
        "extra params entry at the top",
        lambda: _apply(_mlp(), _extra_top),
        LE,
        "unexpected params",
        "'dense_9/kernel'",
    ),
    _case(
        _A,
        "misspelt params entry",
        lambda: _apply(_mlp(), _misspelt),
        LE,
        "'dense_0/kernl'",
        "'dense_0/kernel'",
    ),
    _case(
        _A,
        "extra params entry in a nested block",
        _extra_nested_mlp,
        LE,
        "unexpected params",
        "'hidden_0/dense/scale'",
    ),
    _case(
        _A,
        "extra state entry",
        lambda: _apply(_bn_model(), _extra_state),
        LE,
        "unexpected state",
        "'batchnorm_0/count'",
    ),
    _case(_A, "state left empty", _no_state, LE, "state is missing", "'batchnorm_0/mean'"),
    _case(
        _A,
        "BatchNorm applied without its state",
        _bn_alone_no_state,
        LE,
        "BatchNorm",
        "state",
        "'mean'",
    ),
    _case(
        _A,
        "params given to a parameter-free layer",
        _relu_with_params,
        LE,
        "Relu",
        "unexpected params",
        "'w'",
    ),
    _case(
        _A,
        "params is None",
        lambda: _mlp().apply(None, {}, _X, train=False),
        T,
        "params must be a dict",
        "None",
    ),
    _case(
        _A,
        "state is a list",
        lambda: _mlp().apply({}, [], _X, train=False),
        T,
        "state must be a dict",
        "[]",
    ),
    _case(
        _A,
        "params of another model",
        _params_of_other_model,
        LE,
        "unexpected params",
        "'dense_0/bias'",
    ),
    _case(
        _A,
        "params and state swapped",
        lambda: _apply(_bn_model(), swap=True),
        LE,
        "unexpected params",
        "'batchnorm_0/mean'",
    ),
    _case(_A, "extra params entry inside repeat", _extra_in_repeat, LE, "repeat", "'main/bias2'"),
    _case(
        _A,
        "extra params entry inside remat",
        _extra_in_remat,
        LE,
        "unexpected params",
        "'block/dense_1/kernel'",
    ),
    _case(
        _A,
        "extra params entry in a parallel branch",
        _extra_in_parallel,
        LE,
        "parallel",
        "'dense_1/gain'",
    ),
    _case(
        _A,
        "shortcut params for a residual without one",
        _shortcut_without_one,
        LE,
        "residual",
        "'shortcut/kernel'",
    ),
    # ---- combinators, repeat and remat
    _case(_C, "serial with no layers", lambda: jn.serial(), V, "serial", "at least one layer"),
    _case(
        _C, "parallel with no layers", lambda: jn.parallel(), V, "parallel", "at least one layer"
    ),
    _case(
        _C,
        "branches with no layers",
        lambda: jn.branches(merge="sum"),
        V,
        "branches",
        "at least one layer",
    ),
    _case(
        _C,
        "serial given a list of layers",
        lambda: jn.serial([jn.Dense(2), jn.Relu()]),
        T,
        "item 0",
        "list of 2 layers",
        "serial(*layers)",
    ),
    _case(
        _C,
        "serial with a string item",
        lambda: jn.serial(jn.Dense(2), "relu"),
        T,
        "serial",
        "item 1",
        "'relu'",
    ),
    _case(
        _C,
        "serial with a layer constructor not called",
        lambda: jn.serial(jn.Relu),
        T,
        "item 0",
        "Relu",
    ),
    _case(
        _C,
        "serial with duplicate names",
        lambda: jn.serial(("a", jn.Dense(2)), ("a", jn.Dense(3))),
        V,
        "duplicate layer names",
        "'a'",
    ),
    _case(
        _C,
        "serial child name with a slash",
        lambda: jn.serial(("a/b", jn.Dense(2))),
        V,
        "'a/b'",
        "without '/'",
    ),
    _case(
        _C,
        "serial pair holding a string",
        lambda: jn.serial(("head", "dense")),
        T,
        "item 0",
        "'head'",
    ),
    _case(
        _C,
        "parallel with a None branch",
        lambda: jn.parallel(jn.Dense(2), None),
        T,
        "parallel",
        "item 1",
        "None",
    ),
    _case(
        _C,
        "branches merge='mean'",
        lambda: jn.branches(jn.Dense(2), merge="mean"),
        V,
        "merge",
        "'mean'",
        "'concat'",
    ),
    _case(
        _C, "branches merge=None", lambda: jn.branches(jn.Dense(2), merge=None), T, "merge", "None"
    ),
    _case(
        _C,
        "residual of a string",
        lambda: jn.residual("dense"),
        T,
        "residual",
        "layer must be a Layer",
        "'dense'",
    ),
    _case(
        _C,
        "residual shortcut not called",
        lambda: jn.residual(jn.Dense(2), jn.Dense),
        T,
        "shortcut",
        "Dense",
        "not called",
    ),
    _case(
        _C,
        "named with its arguments swapped",
        lambda: jn.named(jn.Dense(2), "head"),
        T,
        "named",
        "name comes first",
    ),
    _case(
        _C, "named with an empty name", lambda: jn.named("", jn.Dense(2)), V, "named", "name", "''"
    ),
    _case(
        _C,
        "serial name is an int",
        lambda: jn.serial(jn.Dense(2), name=3),
        T,
        "serial",
        "name",
        "3",
    ),
    _case(_C, "fan_out n=0", lambda: jn.fan_out(0), V, "fan_out", "n", "got 0"),
    _case(_C, "fan_out n=2.0", lambda: jn.fan_out(2.0), T, "fan_out", "2.0"),
    _case(
        _C,
        "fan_in_concat of scalars",
        lambda: jn.fan_in_concat().init(_K, ((), ())),
        LE,
        "FanInConcat",
        "rank 0",
    ),
    _case(
        _C,
        "fan_in_concat axis out of range",
        lambda: jn.fan_in_concat(axis=2).init(_K, ((2, 3), (2, 4))),
        LE,
        "axis 2",
        "rank 2",
    ),
    _case(_C, "fan_in_concat axis=1.0", lambda: jn.fan_in_concat(axis=1.0), T, "axis", "1.0"),
    _case(
        _C,
        "fan_in_sum of different shapes",
        lambda: jn.fan_in_sum().init(_K, ((2, 3), (2, 4))),
        LE,
        "FanInSum",
        "(2, 4)",
    ),
    _case(
        _C,
        "parallel given one input for two branches",
        lambda: jn.parallel(jn.Dense(2), jn.Dense(2)).init(_K, ((1, 4),)),
        LE,
        "parallel",
        "tuple of 2",
    ),
    _case(_C, "Lambda of a number", lambda: jn.Lambda(3), T, "Lambda", "fn", "3"),
    _case(
        _C,
        "stateless kind is not a str",
        lambda: jn.stateless(None, abs),
        T,
        "stateless",
        "kind",
        "None",
    ),
    _case(_C, "repeat n=0", lambda: jn.repeat(jn.Dense(2), 0), V, "repeat", "n", "got 0"),
    _case(_C, "repeat n=2.0", lambda: jn.repeat(jn.Dense(2), 2.0), T, "repeat", "2.0"),
    _case(_C, "repeat n=True", lambda: jn.repeat(jn.Dense(2), True), T, "n", "True"),
    _case(
        _C,
        "repeat of a layer constructor",
        lambda: jn.repeat(jn.Dense, 3),
        T,
        "repeat",
        "block",
        "Dense",
    ),
    _case(_C, "repeat unroll=0", lambda: jn.repeat(jn.Dense(2), 2, unroll=0), V, "unroll", "got 0"),
    _case(
        _C,
        "repeat unroll='all'",
        lambda: jn.repeat(jn.Dense(2), 2, unroll="all"),
        T,
        "unroll",
        "'all'",
    ),
    _case(
        _C,
        "repeat remat='yes'",
        lambda: jn.repeat(jn.Dense(2), 2, remat="yes"),
        T,
        "remat",
        "'yes'",
    ),
    _case(
        _C,
        "repeat policy given by name",
        lambda: jn.repeat(jn.Dense(2), 2, policy="dots_saveable"),
        T,
        "policy",
        "'dots_saveable'",
        "jax.checkpoint_policies.dots_saveable",
    ),
    _case(
        _C,
        "repeat policy without remat",
        lambda: jn.repeat(
            jn.Dense(2), 2, remat=False, policy=jax.checkpoint_policies.dots_saveable
        ),
        V,
        "repeat",
        "policy needs remat=True",
    ),
    _case(
        _C,
        "repeat of a block that changes the shape",
        lambda: jn.repeat(jn.Dense(5), 2).init(_K, (2, 3)),
        LE,
        "repeat",
        "(2, 5)",
    ),
    _case(
        _C,
        "remat policy is an int",
        lambda: jn.remat(jn.Dense(2), policy=1),
        T,
        "remat",
        "policy",
        "1",
    ),
    _case(_C, "remat of a string", lambda: jn.remat("block"), T, "remat", "'block'"),
    # ---- the choice of an implementation
    _case(
        _I,
        "BatchNorm impl='fast'",
        lambda: jn.BatchNorm(impl="fast"),
        V,
        "BatchNorm",
        "'fast'",
        "'closed_form'",
    ),
    _case(_I, "BatchNorm impl=1", lambda: jn.BatchNorm(impl=1), T, "BatchNorm", "impl", "1"),
    _case(_I, "MaxPool impl=None", lambda: jn.MaxPool(2, impl=None), T, "MaxPool", "impl", "None"),
    _case(
        _I,
        "MaxPool impl with a capital",
        lambda: jn.MaxPool(2, impl="Tiled"),
        V,
        "'Tiled'",
        "'tiled'",
    ),
    _case(
        _I,
        "LSTM impl='cudnn'",
        lambda: jn.LSTM(4, impl="cudnn"),
        V,
        "LSTM",
        "'cudnn'",
        "'reference'",
    ),
    _case(
        _I,
        "repeat impl='scan'",
        lambda: jn.repeat(jn.Dense(2), 2, impl="scan"),
        V,
        "repeat",
        "'scan'",
        "'while_loop'",
    ),
    _case(
        _I,
        "MaxPool tiled on overlapping windows",
        _tiled_on_overlapping_windows,
        LE,
        "impl='tiled'",
        "impl='reference'",
    ),
    _case(
        _I,
        "repeat while_loop without remat",
        _while_loop_without_remat,
        LE,
        "impl='while_loop'",
        "remat=True",
    ),
]
