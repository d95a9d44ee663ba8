"""fit and evaluate read any source of batches: arrays, lists, grain data sets and loaders."""

import jax
import numpy as np
import optax
import pytest

import jaxnets as jn

grain = pytest.importorskip("grain", reason="grain is in jaxnets' dependencies")

DATA = jn.data.two_spirals(96)  # 192 examples


def _fit(data, epochs=1, **kwargs):
    return jn.fit(
        jn.models.mlp((16,), 2, dropout=0.2),
        data,
        optimizer=optax.adam(1e-2),
        epochs=epochs,
        seed=3,
        progress=False,
        **kwargs,
    )


def _assert_bitwise(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _grain_batches(n=None, batch=32, seed=None):
    n = len(DATA) if n is None else n
    ds = grain.MapDataset.source(list(range(n)))
    if seed is not None:
        ds = ds.shuffle(seed=seed)
    return ds.map(lambda i: (DATA.inputs[i], DATA.labels[i])).batch(batch)


def test_a_list_of_the_same_batches_trains_bitwise_like_the_arrays():
    pairs = list(jn.data.batches(DATA, 32, seed=3, epoch=0))
    from_arrays = _fit(DATA, batch_size=32)
    from_list = _fit(pairs)
    _assert_bitwise(from_arrays.state.params, from_list.state.params)
    assert from_list.history["loss"] == from_arrays.history["loss"]


def test_dict_batches_and_an_explicit_matching_batch_size():
    pairs = [{"inputs": x, "labels": y} for x, y in jn.data.batches(DATA, 32, seed=3, epoch=0)]
    _assert_bitwise(_fit(pairs, batch_size=32).state.params, _fit(DATA, batch_size=32).state.params)


def test_a_grain_map_dataset_trains_and_validates():
    ds = _grain_batches(seed=0)
    result = _fit(ds, epochs=3, val_data=_grain_batches(n=150, batch=64))
    assert len(result.history["loss"]) == 3
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert len(result.history["val_accuracy"]) == 3


def test_evaluation_of_batches_counts_every_example_once():
    # 150 examples in batches of 64: the last (22) is padded to 64 and masked
    trained = _fit(DATA, batch_size=32)
    step = jn.make_eval_step(jn.models.mlp((16,), 2, dropout=0.2), "softmax_cross_entropy")
    from_grain = jn.evaluate(step, trained.state, _grain_batches(n=150, batch=64))
    from_arrays = jn.evaluate(step, trained.state, DATA.take(slice(0, 150)), batch_size=50)
    assert from_grain["accuracy"] == from_arrays["accuracy"]
    np.testing.assert_allclose(from_grain["loss"], from_arrays["loss"], rtol=1e-6)


class _Pick(grain.transforms.Map):
    def map(self, i):
        return DATA.inputs[i], DATA.labels[i]


def test_a_grain_data_loader_with_steps_per_epoch():
    loader = grain.DataLoader(
        data_source=list(range(len(DATA))),
        sampler=grain.samplers.IndexSampler(
            len(DATA), shuffle=True, seed=0, num_epochs=1, shard_options=grain.sharding.NoSharding()
        ),
        operations=[
            _Pick(),
            grain.transforms.Batch(32, drop_remainder=True),
        ],
        worker_count=0,
    )
    result = _fit(loader, epochs=2, steps_per_epoch=6)
    assert len(result.history["loss"]) == 2


def test_sequence_inputs_with_lengths_go_through_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5, 3)).astype(np.float32)
    lengths = rng.integers(1, 6, size=64).astype(np.int32)
    y = (x[:, 0, 0] > 0).astype(np.int32)
    pairs = [((x[i : i + 16], lengths[i : i + 16]), y[i : i + 16]) for i in range(0, 64, 16)]
    model = jn.serial(jn.RNN(jn.LSTM(8), return_sequences=False), jn.Dense(2))
    result = jn.fit(model, pairs, optimizer=optax.adam(1e-2), epochs=2, progress=False)
    assert np.isfinite(result.history["loss"]).all()
    step = jn.make_eval_step(model, "softmax_cross_entropy")
    assert 0.0 <= jn.evaluate(step, result.state, pairs[:3])["accuracy"] <= 1.0


def test_resume_mid_epoch_from_a_list_is_bitwise(tmp_path):
    pairs = list(jn.data.batches(DATA, 32, seed=3, epoch=0))

    class StopAt(jn.train.callbacks.Callback):
        def on_step_end(self, run, metrics):
            return run.step == 4

    whole = _fit(pairs, epochs=2)
    _fit(
        pairs,
        epochs=2,
        checkpoint_dir=str(tmp_path),
        checkpoint_every_steps=2,
        callbacks=[StopAt()],
    )
    resumed = _fit(pairs, epochs=2, checkpoint_dir=str(tmp_path), resume=True)
    _assert_bitwise(whole.state.params, resumed.state.params)


@pytest.mark.parametrize(
    "data, kwargs, error, words",
    [
        ((b for b in [(np.ones((4, 2)), np.zeros(4))]), {}, TypeError, ["one-shot", "list"]),
        ([], {}, ValueError, ["no batch"]),
        (
            [(np.ones((4, 2)), np.zeros(4, np.int32))],
            {"batch_size": 8},
            ValueError,
            ["batch_size=8", "4 examples"],
        ),
        ([np.ones((4, 2))], {}, TypeError, ["batch 0", "pair"]),
        (
            [
                (np.ones((4, 2), np.float32), np.zeros(4, np.int32)),
                (np.ones((4, 3), np.float32), np.zeros(4, np.int32)),
            ],
            {},
            ValueError,
            ["batch 1", "shapes", "(4, 3)"],
        ),
        (
            [
                (np.ones((4, 2), np.float32), np.zeros(4, np.int32)),
                (np.ones((4, 2), np.float64), np.zeros(4, np.int32)),
            ],
            {},
            ValueError,
            ["batch 1", "dtypes", "float64"],
        ),
        (
            [(np.ones((4, 2), np.float32), np.zeros(4, np.int32))],
            {"steps_per_epoch": 3},
            ValueError,
            ["ran out after 1", "3"],
        ),
        (
            [(np.ones((4, 2), np.float32), np.zeros(3, np.int32))],
            {},
            ValueError,
            ["leading sizes", "3", "4"],
        ),
    ],
    ids=[
        "generator",
        "empty",
        "batch-size",
        "not-a-pair",
        "shape",
        "dtype",
        "ran-out",
        "leading-sizes",
    ],
)
def test_bad_sources_are_refused_clearly(data, kwargs, error, words):
    with pytest.raises(error) as info:
        jn.fit(
            jn.models.mlp((4,), 2),
            data,
            optimizer=optax.sgd(0.1),
            epochs=1,
            progress=False,
            **kwargs,
        )
    message = str(info.value)
    assert message.startswith("fit: ") and all(w in message for w in words), message


def test_an_iterable_without_len_needs_steps_per_epoch():
    class Endless:
        def __iter__(self):
            while True:
                yield np.ones((4, 2), np.float32), np.zeros(4, np.int32)

    with pytest.raises(TypeError, match="steps_per_epoch"):
        jn.fit(jn.models.mlp((4,), 2), Endless(), optimizer=optax.sgd(0.1), progress=False)
    result = jn.fit(
        jn.models.mlp((4,), 2),
        Endless(),
        optimizer=optax.sgd(0.1),
        epochs=2,
        steps_per_epoch=3,
        progress=False,
    )
    assert len(result.history["loss"]) == 2
