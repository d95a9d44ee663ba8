"""The file pipeline: image folders, packed records, grain batches per epoch and process."""

import json
import os

import jax
import numpy as np
import optax
import pytest

import jaxnets as jn

pytest.importorskip("grain", reason="grain is in jaxnets' dependencies")


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    """400 digits (8x8 grey, values in [0, 1]) written as PNG files by class."""
    train, _ = jn.data.load_digits()
    data = train.take(slice(0, 400))
    root = tmp_path_factory.mktemp("digits") / "train"
    jn.data.write_image_folder(root, data)
    return root, data


def _cnn():
    return jn.serial(jn.Conv(8, (3, 3)), jn.Relu(), jn.MaxPool((2, 2)), jn.Flatten(), jn.Dense(10))


def _as_uint8(x):
    return np.clip(np.rint(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)


def test_image_folder_reads_back_what_was_written(digits_folder):
    root, data = digits_folder
    images = jn.data.ImageFolder(root, size=(8, 8), channels=1)
    assert len(images) == len(data) and images.classes == [str(i) for i in range(10)]
    # files are ordered by class, then by name (the example's index)
    order = np.lexsort((np.arange(len(data)), data.labels))
    for position in (0, 57, 399):
        image, label = images[position]
        np.testing.assert_array_equal(image, _as_uint8(data.inputs[order[position]]))
        assert label == data.labels[order[position]]


def test_image_folder_resizes_and_refuses_bad_layouts(tmp_path, digits_folder):
    root, _ = digits_folder
    big = jn.data.ImageFolder(root, size=(16, 12), channels=3)
    assert big[0][0].shape == (16, 12, 3) and big[0][0].dtype == np.uint8
    with pytest.raises(FileNotFoundError, match="not a folder"):
        jn.data.ImageFolder(tmp_path / "nowhere", size=(8, 8))
    with pytest.raises(ValueError, match="no class folders"):
        jn.data.ImageFolder(tmp_path, size=(8, 8))
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "broken.png").write_bytes(b"not a png")
    folder = jn.data.ImageFolder(tmp_path, size=(8, 8))
    with pytest.raises(ValueError, match=r"broken\.png"):
        folder[0]


def test_records_round_trip_and_refuse_damage(tmp_path, digits_folder):
    root, _ = digits_folder
    images = jn.data.ImageFolder(root, size=(8, 8), channels=1)
    path = tmp_path / "digits.array_record"
    assert jn.data.write_records(path, (images[i] for i in range(len(images)))) == len(images)
    records = jn.data.RecordFile(path)
    assert len(records) == len(images) and records.shape == (8, 8, 1)
    for i in (0, 123, 399):
        np.testing.assert_array_equal(records[i][0], images[i][0])
        assert records[i][1] == images[i][1]
    with pytest.raises(FileExistsError):
        jn.data.write_records(path, [(np.zeros(2), 0)])
    description = json.loads((tmp_path / "digits.array_record.json").read_text())
    description["count"] += 1
    (tmp_path / "digits.array_record.json").write_text(json.dumps(description))
    with pytest.raises(ValueError, match="truncated"):
        jn.data.RecordFile(path)
    (tmp_path / "digits.array_record.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not the description"):
        jn.data.RecordFile(path)
    with pytest.raises(ValueError, match="example 1 has shape"):
        jn.data.write_records(tmp_path / "mixed", [(np.zeros(2), 0), (np.zeros(3), 1)])
    assert not os.path.exists(tmp_path / "mixed") and not os.path.exists(tmp_path / "mixed.partial")


def test_process_shards_make_up_the_global_batches():
    source = [(np.zeros(1), np.int32(0))] * 50
    one = jn.data.Pipeline(source, 8, seed=4, process_index=0, process_count=1)
    halves = [jn.data.Pipeline(source, 8, seed=4, process_index=p, process_count=2) for p in (0, 1)]
    for epoch in (0, 1):
        whole = one.indices(epoch)
        parts = np.concatenate([h.indices(epoch) for h in halves], axis=1)
        np.testing.assert_array_equal(parts, whole)
        assert len(set(whole.ravel())) == whole.size  # no example twice in an epoch
    assert not np.array_equal(one.indices(0), one.indices(1))  # a new order each epoch


def test_fit_from_the_folder_pipeline_matches_fit_from_arrays(digits_folder):
    root, data = digits_folder
    images = jn.data.ImageFolder(root, size=(8, 8), channels=1)
    # the same examples in the same order: the folder's order, quantised as the PNGs are
    order = np.lexsort((np.arange(len(data)), data.labels))
    arrays = jn.data.ArrayDataset(
        _as_uint8(data.inputs[order]).astype(np.float32) / 255.0, data.labels[order]
    )
    pipeline = jn.data.Pipeline(images, 32, seed=0)
    kwargs = dict(optimizer=optax.adam(1e-2), epochs=2, seed=0, progress=False)
    from_files = jn.fit(_cnn(), pipeline, **kwargs)
    from_arrays = jn.fit(_cnn(), arrays, batch_size=32, **kwargs)
    for a, b in zip(
        jax.tree.leaves(from_files.state.params),
        jax.tree.leaves(from_arrays.state.params),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_resume_mid_epoch_with_worker_processes_is_bitwise(tmp_path, digits_folder):
    root, _ = digits_folder
    images = jn.data.ImageFolder(root, size=(8, 8), channels=1)

    class StopAt(jn.train.callbacks.Callback):
        def on_step_end(self, run, metrics):
            return run.step == 17  # epoch 1, batch 5 (12 batches an epoch)

    def run(**kwargs):
        return jn.fit(
            _cnn(),
            jn.data.Pipeline(images, 32, seed=1, workers=1),
            optimizer=optax.adam(1e-2),
            epochs=2,
            seed=0,
            progress=False,
            **kwargs,
        )

    whole = run()
    run(checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every_steps=1, callbacks=[StopAt()])
    resumed = run(checkpoint_dir=str(tmp_path / "ckpt"), resume=True)
    for a, b in zip(
        jax.tree.leaves(whole.state.params), jax.tree.leaves(resumed.state.params), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
