"""The layer contract: specs, naming, keys, combinators, and error messages."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn


def test_init_accepts_shape_spec_and_array():
    model = jn.serial(jn.Dense(3), jn.Relu())
    k = jax.random.key(0)
    a = model.init(k, (2, 4))
    b = model.init(k, jax.ShapeDtypeStruct((2, 4), jnp.float32))
    c = model.init(k, jnp.zeros((2, 4)))
    chex.assert_trees_all_equal(a[1], b[1], c[1])
    assert a[0] == b[0] == c[0] == jax.ShapeDtypeStruct((2, 3), jnp.float32)


def test_auto_names_count_per_kind_and_explicit_names_win():
    model = jn.serial(jn.Dense(3), jn.Relu(), jn.Dense(2), ("head", jn.Dense(1)))
    _, params, _ = model.init(jax.random.key(0), (1, 4))
    assert list(params) == ["dense_0", "dense_1", "head"]
    named = jn.serial(jn.Dense(3, name="first"), jn.named("second", jn.Dense(2)))
    _, params, _ = named.init(jax.random.key(0), (1, 4))
    assert list(params) == ["first", "second"]


def test_duplicate_names_are_rejected():
    with pytest.raises(ValueError, match="duplicate layer names"):
        jn.serial(("a", jn.Dense(2)), ("a", jn.Dense(3)))


def test_non_layer_item_is_rejected():
    with pytest.raises(TypeError, match="expected Layer"):
        jn.serial(jn.Dense(2), "relu")


def test_child_keys_depend_on_names_not_positions():
    k = jax.random.key(0)
    _, p1, _ = jn.serial(("a", jn.Dense(3)), ("b", jn.Dense(3))).init(k, (1, 3))
    _, p2, _ = jn.serial(("x", jn.Dense(3)), ("a", jn.Dense(3)), ("b", jn.Dense(3))).init(k, (1, 3))
    chex.assert_trees_all_equal(p1["a"], p2["a"])
    assert not np.array_equal(p1["a"]["kernel"], p1["b"]["kernel"])


def test_init_allocates_nothing_under_eval_shape():
    spec, params, state = jn.shape_tree(jn.models.mlp((4096, 4096), 10), (1, 4096))
    assert isinstance(params["hidden_0"]["dense"]["kernel"], jax.ShapeDtypeStruct)
    assert jn.count_params(params) == 4096 * 4096 * 2 + 2 * 4096 + 4096 * 10 + 10
    assert spec.shape == (1, 10)


def test_residual_adds_identity():
    block = jn.residual(jn.Dense(3))
    _, params, state = block.init(jax.random.key(0), (2, 3))
    x = jnp.arange(6.0).reshape(2, 3)
    y, _ = block.apply(params, state, x, train=False)
    expected = x @ params["main"]["kernel"] + params["main"]["bias"][None] + x
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_residual_shape_mismatch_says_use_projection():
    with pytest.raises(ValueError, match="shortcut="):
        jn.residual(jn.Dense(4)).init(jax.random.key(0), (2, 3))


def test_branches_concat_and_parallel_outputs():
    net = jn.branches(("a", jn.Dense(2)), ("b", jn.Dense(3)))
    spec, params, _ = net.init(jax.random.key(0), (5, 4))
    assert spec.shape == (5, 5) and sorted(params) == ["a", "b"]
    x = jnp.ones((5, 4))
    y, _ = net.apply(params, {}, x, train=False)
    ya, _ = jn.Dense(2).apply(params["a"], {}, x, train=False)
    np.testing.assert_allclose(y[:, :2], ya)


def test_parallel_checks_arity():
    net = jn.parallel(jn.Dense(2), jn.Dense(2))
    with pytest.raises(ValueError, match="tuple of 2"):
        net.init(jax.random.key(0), (3, 4))


def test_fan_in_concat_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must agree except on axis"):
        jn.fan_in_concat().init(jax.random.key(0), ((2, 3), (3, 3)))


def test_mode_is_chosen_at_call_time_and_required():
    model = jn.serial(jn.Dense(4), jn.Dropout(0.5))
    _, params, state = model.init(jax.random.key(0), (8, 4))
    x = jnp.ones((8, 4))
    with pytest.raises(TypeError, match="train"):
        model.apply(params, state, x)
    infer, _ = model.apply(params, state, x, train=False)
    train, _ = model.apply(params, state, x, key=jax.random.key(1), train=True)
    assert not np.allclose(infer, train)


def test_dropout_key_is_split_per_layer():
    model = jn.serial(jn.Dropout(0.5), jn.Dropout(0.5))
    x = jnp.ones((1, 1000))
    y, _ = model.apply({}, {}, x, key=jax.random.key(0), train=True)
    single, _ = jn.Dropout(0.5).apply({}, {}, x, key=jax.random.key(0), train=True)
    # Two independent masks keep about a quarter of the units (scaled by 4).
    assert 0.2 < float(jnp.mean(y > 0)) < 0.3
    assert not np.array_equal(np.asarray(y > 0), np.asarray(single > 0))


def test_lambda_layer_infers_shape():
    spec, _, _ = jn.Lambda(lambda x: x[:, :2] * 2).init(jax.random.key(0), (3, 5))
    assert spec.shape == (3, 2)


# ----------------------------------------------------------------------------- errors


def test_wrong_feature_size_names_layer_and_shapes():
    model = jn.serial(jn.Dense(4), ("out", jn.Dense(2)))
    _, params, state = model.init(jax.random.key(0), (2, 3))
    with pytest.raises(ValueError, match=r"dense_0/Dense: input has 5 features.*\(3, 4\)"):
        model.apply(params, state, jnp.ones((2, 5)), train=False)


def test_wrong_rank_at_init():
    with pytest.raises(ValueError, match=r"Dense: expected an input of rank >= 2.*\(3,\)"):
        jn.init_model(jn.Dense(2), jax.random.key(0), (3,))


def test_missing_param_key_lists_what_came():
    model = jn.serial(jn.Dense(2))
    _, params, state = model.init(jax.random.key(0), (1, 3))
    broken = {"dense_0": {"kernel": params["dense_0"]["kernel"]}}
    with pytest.raises(ValueError, match=r"dense_0/Dense: missing parameter 'bias'.*\['kernel'\]"):
        model.apply(broken, state, jnp.ones((1, 3)), train=False)


def test_wrong_param_shape_is_reported():
    model = jn.serial(jn.Dense(2))
    _, params, state = model.init(jax.random.key(0), (1, 3))
    params["dense_0"]["bias"] = jnp.zeros(5)
    with pytest.raises(ValueError, match=r"'bias' has shape \(5,\), expected \(2,\)"):
        model.apply(params, state, jnp.ones((1, 3)), train=False)


def test_check_tree_matches_names_first_mismatch():
    _, params, _ = jn.models.mlp((4,), 3).init(jax.random.key(0), (1, 5))
    _, other, _ = jn.models.mlp((6,), 3).init(jax.random.key(0), (1, 5))
    with pytest.raises(ValueError, match=r"hidden_0/dense/bias' has shape \(6,\).*\(4,\)"):
        jn.check_tree_matches(params, other)
    jn.check_tree_matches(params, params)


def test_dropout_in_training_without_key():
    with pytest.raises(ValueError, match="Dropout: needs a PRNG key"):
        jn.Dropout(0.1).apply({}, {}, jnp.ones(3), train=True)
    with pytest.raises(ValueError, match="AlphaDropout: needs a PRNG key"):
        jn.AlphaDropout(0.1).apply({}, {}, jnp.ones(3), train=True)


@pytest.mark.parametrize(
    ("rate", "error"),
    [(-0.1, ValueError), (1.0, ValueError), (1.5, ValueError), ("0.5", TypeError)],
)
def test_dropout_rate_outside_unit_interval(rate, error):
    with pytest.raises(error, match=r"probability of dropping a unit.*\[0, 1\)"):
        jn.Dropout(rate)


def test_unknown_activation_lists_known_names():
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'.*'relu'"):
        jn.Activation("rleu")
    with pytest.raises(ValueError, match="unknown activation"):
        jn.Dense(3, activation="sigmod")


def test_integer_input_to_dense_is_a_type_error():
    _, params, _ = jn.Dense(2).init(jax.random.key(0), (1, 3))
    with pytest.raises(TypeError, match="Dense: expected a floating-point input, got dtype int32"):
        jn.Dense(2).apply(params, {}, jnp.ones((1, 3), jnp.int32), train=False)


def test_bad_input_spec_type():
    with pytest.raises(TypeError, match="input_spec must be"):
        jn.Dense(2).init(jax.random.key(0), "32x3")


# --------------------------------------------------------------------------- the door


def _counting_layer(calls):
    """A parameter layer whose init counts its calls (to see when the door runs it)."""
    dense = jn.Dense(2)

    def init(key, spec):
        calls.append(1)
        return dense.init(key, spec)

    return jn.Layer(init, dense.apply, "Counted")


def test_structure_check_runs_once_per_shape_and_structure():
    calls: list = []
    model = jn.serial(_counting_layer(calls), jn.Relu())
    _, params, state = model.init(jax.random.key(0), (2, 3))
    calls.clear()
    for _ in range(3):
        model.apply(params, state, jnp.ones((2, 3)), train=False)
    assert len(calls) == 1  # cached: the abstract init ran once, not once per call
    step = jax.jit(lambda p, x: model.apply(p, state, x, train=False)[0])
    step(params, jnp.ones((5, 3)))
    step(params, jnp.ones((5, 3)))
    assert len(calls) == 2  # a new input shape traces (and checks) once; the step is free


def test_unexpected_entries_are_refused_under_jit_grad_and_vmap():
    model = jn.serial(jn.Dense(2))
    _, params, state = model.init(jax.random.key(0), (2, 3))
    params["dense_0"]["extra"] = jnp.ones(2)
    x = jnp.ones((2, 3))
    with pytest.raises(jn.LayerError, match="unexpected params entries \\['dense_0/extra'\\]"):
        jax.jit(lambda p: model.apply(p, state, x, train=False))(params)
    with pytest.raises(jn.LayerError, match="dense_0/extra"):
        jax.grad(lambda p: model.apply(p, state, x, train=True)[0].sum())(params)
    with pytest.raises(jn.LayerError, match="dense_0/extra"):
        jax.vmap(lambda xi: model.apply(params, state, xi, train=False)[0])(x[:, None])


def test_valid_calls_pass_the_door_unchanged():
    model = jn.serial(jn.Dense(4), jn.BatchNorm(), jn.Dropout(0.5), jn.Dense(2))
    _, params, state = model.init(jax.random.PRNGKey(0), (np.int64(4), 3))  # legacy key, np int
    x = jnp.ones((4, 3))
    y, new_state = model.apply(params, state, x, key=jax.random.PRNGKey(1), train=np.bool_(True))
    assert y.shape == (4, 2) and sorted(new_state) == ["batchnorm_0"]
    grads = jax.grad(
        lambda p: model.apply(p, state, x, key=jax.random.key(2), train=True)[0].sum()
    )(params)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    batched = jax.vmap(lambda xi: model.apply(params, state, xi, train=False)[0])(x[:, None])
    assert batched.shape == (4, 1, 2)
    assert model.apply(params, state, x, train=False)[0].shape == (4, 2)


def test_a_renamed_layer_is_named_at_the_door():
    head = jn.named("head", jn.Dropout(0.5))
    with pytest.raises(TypeError, match=r"^head: train must be True or False, got 'False'"):
        head.apply({}, {}, jnp.ones(3), train="False")


def test_the_door_adds_no_prefix_through_init_model():
    with pytest.raises(TypeError, match=r"^serial: key must be a JAX PRNG key"):
        jn.init_model(jn.serial(jn.Dense(2)), 0, (1, 3))
    with pytest.raises(ValueError, match=r"^serial: input_spec: dim 0 must be a positive int"):
        jn.serial(jn.Dense(2)).init(jax.random.key(0), (0, 3))


def test_summary_impl_column_ignores_the_door():
    model = jn.serial(jn.Conv(2, 3), jn.MaxPool(2), jn.Flatten(), jn.Dense(2))
    text = jn.summary(model, (1, 8, 8, 1), print_fn=None)
    assert text.count("maxpool_0") == 1 and "Total params" in text


def test_empty_combinators_are_refused():
    for make in (jn.serial, jn.parallel, jn.branches):
        with pytest.raises(ValueError, match="at least one layer"):
            make()
