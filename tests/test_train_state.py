"""TrainState: a named-tuple-like pytree, and the flat arrays a train step hands on."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn


def _setup(model=None, opt=None):
    model = model or jn.models.mlp((8,), 3, batch_norm=True)
    opt = opt or optax.sgd(0.1, momentum=0.9)  # adam would turn the rounding noise of
    # the zero gradient of a bias before BatchNorm into steps of +-lr
    ts = jn.create_train_state(model, opt, (4, 5))
    step = jn.make_train_step(model, "softmax_cross_entropy", opt)
    rng = np.random.default_rng(0)
    batch = (rng.normal(size=(4, 5)).astype(np.float32), rng.integers(0, 3, 4).astype(np.int32))
    return model, opt, ts, step, batch


def _reference_step(model, opt, params, state, opt_state, batch):
    """One optimizer step written out with jax.grad, independent of TrainStep."""

    def loss(p):
        logits, new_state = model.apply(p, state, batch[0], key=None, train=True)
        value = optax.losses.softmax_cross_entropy_with_integer_labels(logits, batch[1])
        return value.mean(), new_state

    grads, new_state = jax.grad(loss, has_aux=True)(params)
    updates, new_opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_state, new_opt_state


def _assert_trees_close(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_named_tuple_api_and_pytree_paths():
    ts = jn.TrainState(np.int32(3), {"w": jnp.ones(2)}, {"s": jnp.zeros(1)}, (jnp.ones(()),), 7)
    step, params, state, opt_state, key = ts
    assert (int(step), sorted(params), sorted(state), len(opt_state)) == (3, ["w"], ["s"], 1)
    assert key == 7
    assert ts._fields == ("step", "params", "state", "opt_state", "key") and len(ts) == 5
    assert ts[1] is ts.params and ts[-1] == 7
    assert sorted(ts._asdict()) == sorted(ts._fields)
    moved = ts._replace(step=np.int32(4))
    assert int(moved.step) == 4 and moved.params is ts.params and int(ts.step) == 3
    with pytest.raises(ValueError, match="unknown fields"):
        ts._replace(parms={})
    paths = [
        jax.tree_util.keystr(p, simple=True, separator="/")
        for p, _ in jax.tree_util.tree_flatten_with_path(ts)[0]
    ]
    assert paths == ["step", "params/w", "state/s", "opt_state/0", "key"]
    doubled = jax.tree.map(lambda x: x * 2, ts)
    assert isinstance(doubled, jn.TrainState) and int(doubled.step) == 6
    np.testing.assert_array_equal(doubled.params["w"], [2.0, 2.0])
    assert "step=" in repr(ts) and "params=<1 arrays>" in repr(ts)


def test_stepped_state_builds_its_dicts_only_when_read():
    model, opt, ts, step, batch = _setup()
    expected = _reference_step(model, opt, ts.params, ts.state, ts.opt_state, batch)
    ts, _ = step(ts, batch)
    assert ts._tree is None  # held as the compiled step's flat list
    _assert_trees_close((ts.params, ts.state, ts.opt_state), expected)
    assert ts._tree is not None and ts.params is ts.params  # built once
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(ts)[0]]
    assert any(p.startswith(".params['logits']") for p in paths)


def test_a_chain_of_steps_equals_the_reference():
    model, opt, ts, step, batch = _setup()
    tree = (ts.params, ts.state, ts.opt_state)
    for _ in range(3):
        tree = _reference_step(model, opt, *tree, batch)
        ts, _ = step(ts, batch)
    _assert_trees_close((ts.params, ts.state, ts.opt_state), tree)
    assert int(ts.step) == 3 and step._cache_size() == 1


def test_dicts_changed_in_place_after_reading_are_seen_by_the_next_step():
    model, opt, ts, step, batch = _setup()
    ts, _ = step(ts, batch)
    ts.params["logits"]["kernel"] = jnp.zeros_like(ts.params["logits"]["kernel"])
    expected = _reference_step(model, opt, ts.params, ts.state, ts.opt_state, batch)
    ts, _ = step(ts, batch)
    _assert_trees_close((ts.params, ts.state, ts.opt_state), expected)


def test_a_stepped_state_goes_through_another_step_and_jit():
    model, opt, ts, step, batch = _setup()
    other = jn.make_train_step(model, "softmax_cross_entropy", opt)
    ts, _ = step(ts, batch)
    ts, _ = other(ts, batch)  # another step's flat list: taken from the dicts
    assert int(ts.step) == 2
    evaluate = jn.make_eval_step(model, "softmax_cross_entropy")
    sums = evaluate(ts, (*batch, np.ones(4, np.float32)))
    assert int(sums["count"]) == 4 and np.isfinite(float(sums["loss"]))


def test_a_state_that_does_not_fit_the_compiled_step_is_named():
    model, opt, ts, step, batch = _setup()
    ts, _ = step(ts, batch)
    params = {k: v for k, v in ts.params.items() if k != "logits"}
    with pytest.raises(ValueError, match=r"does not fit.*missing 'params/logits/bias'"):
        step(ts._replace(params=params), batch)
    ts.params["logits"]["kernel"] = {"w": ts.params["logits"]["kernel"]}  # a dict for an array
    with pytest.raises(ValueError, match=r"does not fit.*missing 'params/logits/kernel'"):
        step(ts, batch)
    with pytest.raises(TypeError, match=r"expected a jaxnets TrainState.*tuple"):
        step(tuple(ts), batch)


def test_dtype_change_recompiles_instead_of_failing():
    model, opt, ts, step, batch = _setup(jn.models.mlp((8,), 3))
    ts, _ = step(ts, batch)
    wide = ts._replace(params=jax.tree.map(lambda p: p.astype(jnp.bfloat16), ts.params))
    wide, metrics = step(wide, batch)
    assert np.isfinite(float(metrics["loss"])) and step._cache_size() == 2
