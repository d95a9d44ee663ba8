"""Data iterators, the digits split, losses against optax/numpy, and the summary table."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn


def test_digits_split_matches_scikit_learn_example():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    train, test = jn.data.load_digits()
    digits = load_digits()
    _, x_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=0.5, shuffle=False
    )
    assert len(train) == 898 and len(test) == 899
    np.testing.assert_array_equal(test.labels, y_test)
    np.testing.assert_array_equal(train.labels, y_train)
    np.testing.assert_allclose(test.inputs[..., 0] * 16.0, x_test)
    assert train.inputs.dtype == np.float32 and train.inputs.max() <= 1.0


def test_batches_shuffle_by_seed_and_epoch_and_drop_remainder():
    data = jn.data.ArrayDataset(np.arange(10)[:, None], np.arange(10))
    e0 = [y.tolist() for _, y in jn.data.batches(data, 3, seed=1, epoch=0)]
    again = [y.tolist() for _, y in jn.data.batches(data, 3, seed=1, epoch=0)]
    e1 = [y.tolist() for _, y in jn.data.batches(data, 3, seed=1, epoch=1)]
    assert e0 == again and e0 != e1
    assert [len(b) for b in e0] == [3, 3, 3]
    assert len(set(sum(e0, []))) == 9
    resumed = [y.tolist() for _, y in jn.data.batches(data, 3, seed=1, epoch=0, start=1)]
    assert resumed == e0[1:]


def test_eval_batches_pad_and_mask():
    data = jn.data.ArrayDataset(np.arange(5, dtype=np.float32)[:, None], np.arange(5))
    out = list(jn.data.eval_batches(data, 2))
    assert [m.tolist() for *_, m in out] == [[1, 1], [1, 1], [1, 0]]
    assert all(x.shape == (2, 1) for x, _, _ in out)


def test_mismatched_dataset_is_rejected():
    data = jn.data.ArrayDataset(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="4 inputs but 3 labels"):
        next(jn.data.batches(data, 2))


def test_batch_larger_than_data_is_rejected():
    with pytest.raises(ValueError, match="larger than the data set"):
        next(jn.data.batches(jn.data.xor(), 8))


def test_synthetic_sets():
    spirals = jn.data.two_spirals(50, seed=3)
    assert spirals.inputs.shape == (100, 2) and set(spirals.labels.tolist()) == {0, 1}
    np.testing.assert_array_equal(jn.data.two_spirals(50, seed=3).inputs, spirals.inputs)
    x, y = jn.data.xor()
    np.testing.assert_array_equal(y, np.logical_xor(x[:, 0], x[:, 1]).astype(np.int32))


def test_softmax_cross_entropy_integer_and_one_hot_agree_with_numpy():
    logits = jnp.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.2]])
    labels = jnp.array([0, 2])
    logp = np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    expected = -logp[np.arange(2), labels]
    np.testing.assert_allclose(jn.losses.softmax_cross_entropy(logits, labels), expected, rtol=1e-6)
    one_hot = jax.nn.one_hot(labels, 3)
    np.testing.assert_allclose(
        jn.losses.softmax_cross_entropy(logits, one_hot), expected, rtol=1e-6
    )
    with pytest.raises(ValueError, match="integer labels must have shape"):
        jn.losses.softmax_cross_entropy(logits, jnp.array([0, 1, 2]))


def test_other_losses_are_per_example():
    s = jnp.array([[0.3], [-2.0]])
    y = jnp.array([1, 0])
    np.testing.assert_allclose(
        jn.losses.sigmoid_binary_cross_entropy(s, y),
        optax.losses.sigmoid_binary_cross_entropy(s[:, 0], y.astype(jnp.float32)),
        rtol=1e-6,
    )
    np.testing.assert_allclose(jn.losses.hinge(s, y), [0.7, 0.0], rtol=1e-6)
    np.testing.assert_allclose(
        jn.losses.squared_error(jnp.ones((2, 3)), jnp.zeros((2, 3))), [1.0, 1.0]
    )
    with pytest.raises(ValueError, match=r"loss must be one of .* got .crossentropy."):
        jn.losses.get("crossentropy")


def test_accuracy_multiclass_one_hot_and_binary():
    logits = jnp.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert float(jn.losses.accuracy(logits, jnp.array([0, 1, 1]))) == pytest.approx(2 / 3)
    assert float(jn.losses.accuracy(logits, jax.nn.one_hot(jnp.array([0, 1, 0]), 2))) == 1.0
    assert float(jn.losses.accuracy(jnp.array([[0.5], [-0.5]]), jnp.array([1, 1]))) == 0.5


def test_summary_lists_layers_shapes_and_counts():
    model = jn.models.mlp((32,), 10, batch_norm=True)
    lines = []
    text = jn.summary(model, (8, 8, 8, 1), print_fn=lines.append)
    assert lines == [text]
    assert "hidden_0" in text and "  dense" in text and "(8, 32)" in text and "(8, 10)" in text
    assert "Trainable params: 2,474" in text  # 64*32+32 + 2*32 (BN) + 32*10+10
    assert "Non-trainable params (state): 64" in text
    assert "Total params: 2,538" in text


def test_summary_lists_a_repeated_block_once_with_its_stacked_counts():
    block = jn.serial(("dense", jn.Dense(4, activation="relu")), ("norm", jn.BatchNorm()))
    text = jn.summary(jn.serial(("stack", jn.repeat(block, 3))), (2, 4), print_fn=None)
    rows = {line.split()[0]: line.split() for line in text.splitlines()[4:-4]}
    assert [line.split()[0] for line in text.splitlines()[4:-4]] == ["stack", "dense", "norm"]
    assert rows["stack"][4:6] == ["84", "24"]  # 3 x (20 + 8) params, 3 x 8 state entries
    assert rows["dense"][4:6] == ["60", "0"] and rows["norm"][4:6] == ["24", "24"]


def _impl_column(text: str) -> dict[str, str]:
    """The Impl column of a summary, by layer name (rows without one are left out)."""
    lines = text.splitlines()
    start = lines[2].index("Impl")
    rows = [line for line in lines[4:] if not line.startswith(("-", "Total", "Trainable"))]
    return {r.split()[0]: r[start:].strip() for r in rows if len(r) > start and r[start:].strip()}


def test_summary_names_the_implementation_each_layer_runs_with():
    named = jn.serial(
        ("bn", jn.BatchNorm(impl="reference")),
        ("pool", jn.MaxPool(2, impl="tiled")),
        jn.Reshape((4, 2)),
        ("deep", jn.serial(("rnn", jn.Bidirectional(jn.LSTM(3, impl="chunked_forward"))))),
    )
    text = jn.summary(named, (2, 4, 4, 2), print_fn=None)
    assert _impl_column(text) == {
        "bn": "reference",
        "pool": "tiled",
        "rnn": "chunked_forward",
    }, text
    # without a layer that has several implementations there is no Impl column
    assert "Impl" not in jn.summary(
        jn.serial(jn.Conv(2, (3, 3)), jn.Relu()), (1, 5, 5, 1), print_fn=None
    )


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="auto's CPU choices")
def test_summary_shows_what_auto_picks_for_a_train_step():
    model = jn.serial(
        ("bn", jn.BatchNorm()),
        ("pool", jn.MaxPool(2)),
        ("odd", jn.MaxPool(3, strides=1)),  # overlapping windows: the tiled form cannot serve
        ("loop", jn.repeat(jn.serial(jn.Dense(4), jn.Tanh()), 2)),
    )
    text = jn.summary(
        jn.serial(model, jn.Flatten(), ("head", jn.Dense(4))), (2, 6, 6, 4), print_fn=None
    )
    assert _impl_column(text) == {
        "bn": "closed_form",
        "pool": "tiled",
        "odd": "reference",
        "loop": "while_loop",
    }, text


def test_summary_shows_the_choice_of_a_top_level_layer_above_its_block():
    block = jn.serial(("dense", jn.Dense(4, activation="relu")), ("out", jn.Dense(4)))
    text = jn.summary(jn.repeat(block, 3, name="stack"), (2, 4), print_fn=None)
    impls = _impl_column(text)
    assert impls == {"stack": "while_loop"}
    assert [line.split()[0] for line in text.splitlines()[4:-4]] == ["stack", "dense", "out"]


def test_summary_of_a_model_with_integer_params():
    counter = jn.Layer(
        lambda key, spec: (jn.as_spec(spec), {"n": jnp.zeros((), jnp.int32)}, {}),
        lambda p, s, x, *, key=None, train: (x * p["n"].astype(x.dtype), s),
        "Counter",
    )
    text = jn.summary(jn.serial(jn.Dense(3), counter), (2, 4), print_fn=None)
    assert "Counter" in text and "Total params: 16" in text
