"""jaxnets.export and the ``jaxnets export`` / ``jaxnets predict`` commands.

One export with a symbolic batch equals ``model.apply`` at batch 1 and 7 (float32 tightly,
bfloat16 loosely), the file round-trips, a fresh process that never imports jaxnets runs
it, and a run trained with ``jaxnets train`` is exported and classifies PNG files as it
classified the test set. Refused inputs are in ``tests/bad_inputs_export.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets import export as jexport
from jaxnets.cli import main

FAST = ["--no-progress", "--no-compile-cache", "--quiet"]


def _cnn():
    """A CNN with BatchNorm statistics that are not their initial values, and Dropout."""
    model = jn.serial(
        jn.Conv(4, (3, 3)),
        jn.BatchNorm(),
        jn.Relu(),
        jn.MaxPool((2, 2)),
        jn.Flatten(),
        jn.Dropout(0.5),
        jn.Dense(3),
    )
    _, params, state = model.init(jax.random.key(0), (2, 8, 8, 1))
    leaves, treedef = jax.tree.flatten(state)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    state = jax.tree.unflatten(
        treedef,
        [leaf + jax.random.uniform(k, leaf.shape) for k, leaf in zip(keys, leaves, strict=True)],
    )
    return model, params, state, jax.ShapeDtypeStruct((2, 8, 8, 1), jnp.float32)


def _tokens():
    """Embedding and LSTM over int token ids: an input that is not cast."""
    model = jn.serial(jn.Embedding(20, 8), jn.RNN(jn.LSTM(6)), jn.Flatten(), jn.Dense(3))
    _, params, state = model.init(jax.random.key(0), jax.ShapeDtypeStruct((2, 5), jnp.int32))
    return model, params, state, jax.ShapeDtypeStruct((2, 5), jnp.int32)


def _inputs(spec, n, seed=0):
    rng = np.random.default_rng(seed)
    if jnp.issubdtype(spec.dtype, jnp.integer):
        return rng.integers(0, 20, (n, *spec.shape[1:])).astype(np.int32)
    return rng.normal(size=(n, *spec.shape[1:])).astype(np.float32)


@pytest.mark.parametrize("make", [_cnn, _tokens], ids=["cnn", "tokens"])
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_one_export_equals_apply_at_batch_1_and_7(make, precision):
    model, params, state, spec = make()
    exported = jexport.export(model, params, state, spec, precision=precision)
    assert not isinstance(exported.in_avals[0].shape[0], int)  # the batch is a symbol
    reference = jax.jit(lambda x: model.apply(params, state, x, key=None, train=False)[0])
    for n in (1, 7):
        x = _inputs(spec, n, seed=n)
        y = exported.call(x)
        want = reference(x)
        assert y.shape == want.shape == (n, 3) and y.dtype == jnp.float32
        if precision == "float32":
            np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
        else:
            scale = float(jnp.max(jnp.abs(want)))
            np.testing.assert_allclose(y, want, rtol=0, atol=0.03 * scale)
            assert not np.array_equal(np.asarray(y), np.asarray(want))  # bfloat16 did run


def test_a_fixed_batch_export_takes_that_size_only(tmp_path):
    model, params, state, spec = _cnn()
    exported = jexport.export(model, params, state, spec, batch=4)
    assert exported.in_avals[0].shape == (4, 8, 8, 1)
    loaded = jexport.load(jexport.save(exported, str(tmp_path / "m.jaxexport")))
    assert loaded.input_shape == (4, 8, 8, 1)
    x = _inputs(spec, 4)
    np.testing.assert_allclose(
        loaded(x), model.apply(params, state, x, train=False)[0], rtol=1e-5, atol=1e-6
    )


def test_save_and_load_round_trip(tmp_path):
    model, params, state, spec = _cnn()
    exported = jexport.export(model, params, state, spec)
    path = str(tmp_path / "model.jaxexport")
    info = {"image_range": [0.0, 1.0], "note": "digits"}
    assert jexport.save(exported, path, class_names=["a", "b", "c"], metadata=info) == path
    assert os.listdir(tmp_path) == ["model.jaxexport"]  # no temporary file left
    loaded = jexport.load(path)
    assert loaded.input_shape == (None, 8, 8, 1) and loaded.input_dtype == np.float32
    assert loaded.class_names == ["a", "b", "c"] and loaded.metadata == info
    header = loaded.header
    assert header["jaxnets"] == jn.__version__ and header["jax"] == jax.__version__
    assert header["outputs"] == [{"shape": [None, 3], "dtype": "float32"}]
    assert header["platforms"] == [jax.export.default_export_platform()]
    for n in (1, 7):
        x = _inputs(spec, n)
        np.testing.assert_array_equal(loaded(x), exported.call(x))
        np.testing.assert_array_equal(loaded(jnp.asarray(x)), exported.call(x))


def test_an_export_for_another_platform_is_refused_here(tmp_path):
    model, params, state, spec = _cnn()
    other = "cuda" if jax.default_backend() != "gpu" else "cpu"
    exported = jexport.export(model, params, state, spec, platform=other)
    loaded = jexport.load(jexport.save(exported, str(tmp_path / "m")))
    assert loaded.header["platforms"] == [other]
    with pytest.raises(ValueError, match=f"exported for platforms '\\('{other}',\\)'"):
        loaded(_inputs(spec, 2))


_FRESH = """
import importlib.util, json, sys
import numpy as np
spec = importlib.util.spec_from_file_location("standalone_export", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
model = module.load(sys.argv[2])
outputs = [np.asarray(model(np.load(p))) for p in sys.argv[3:]]
np.savez(sys.argv[2] + ".out.npz", *outputs)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "jaxnets")))
"""


def test_the_loaded_export_runs_in_a_fresh_process_without_jaxnets(tmp_path):
    model, params, state, spec = _cnn()
    path = jexport.save(jexport.export(model, params, state, spec), str(tmp_path / "m"))
    inputs = []
    for n in (1, 7):
        inputs.append(str(tmp_path / f"x{n}.npy"))
        np.save(inputs[-1], _inputs(spec, n, seed=n))
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent(_FRESH))
    env = {**os.environ, "JAX_PLATFORMS": jax.default_backend()}
    done = subprocess.run(
        [sys.executable, str(script), jexport.__file__, path, *inputs],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # not the repository: jaxnets is not importable from the folder
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []  # no jaxnets module at all
    outputs = np.load(path + ".out.npz")
    for i, x in enumerate(inputs):
        want = model.apply(params, state, np.load(x), train=False)[0]
        np.testing.assert_allclose(outputs[f"arr_{i}"], want, rtol=1e-5, atol=1e-6)


def _write_pngs(folder, images, size=None):
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        pixels = Image.fromarray(np.round(image[..., 0] * 255).astype(np.uint8))
        if size is not None:
            pixels = pixels.resize((size, size), Image.Resampling.NEAREST)
        paths.append(os.path.join(folder, f"digit{i:04d}.png"))
        pixels.save(paths[-1])
    return paths


def _predicted(text):
    """``{path: [(class, score), ...]}`` from the lines of ``jaxnets predict``."""
    found = {}
    for line in text.strip().splitlines():
        path, *pairs = line.split("  ")
        found[path] = [(c, float(s)) for c, s in (p.rsplit(" ", 1) for p in pairs)]
    return found


def test_train_export_predict_as_a_new_user(tmp_path, capsys):
    run, model_file = str(tmp_path / "run"), str(tmp_path / "model.jaxexport")
    train = ["train", "--model", "mlp", "--model-arg", "hidden=(32,)", "--dataset", "digits"]
    assert main([*train, "--epochs", "3", "--lr", "3e-3", "--out", run, *FAST]) == 0
    with open(os.path.join(run, "results.json")) as f:
        test_accuracy = json.load(f)["test_accuracy"]
    assert main(["export", run, "--out", model_file]) == 0
    assert "best.jnc" in capsys.readouterr().out
    loaded = jexport.load(model_file)
    assert loaded.class_names == [str(i) for i in range(10)]
    assert loaded.metadata["image_range"] == [0.0, 1.0]
    assert loaded.metadata["checkpoint"] == "best.jnc" and loaded.metadata["model"] == "mlp"

    # the whole test half as PNG files: predict classifies them as the run classified it
    test = jn.data.load_digits()[1]
    paths = _write_pngs(str(tmp_path / "native"), test.inputs)
    assert main(["predict", model_file, str(tmp_path / "native"), "--top", "3"]) == 0
    found = _predicted(capsys.readouterr().out)
    assert list(found) == paths
    assert all(len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] for top in found.values())
    classes = np.array([int(found[p][0][0]) for p in paths])
    assert abs(np.mean(classes == test.labels) - test_accuracy) <= 0.005
    # the scores are the export's softmax of the images scaled to [0, 1]
    quantised = np.round(test.inputs[:5] * 255) / 255
    scores = np.asarray(jax.nn.softmax(np.asarray(loaded(quantised)), axis=-1))
    for path, row in zip(paths[:5], scores, strict=True):
        assert found[path][0] == (str(int(row.argmax())), pytest.approx(row.max(), abs=1e-4))

    # 24x24 files, named one by one, are resized to the export's 8x8 (antialiased, so the
    # strokes blur a little)
    big = _write_pngs(str(tmp_path / "big"), test.inputs[:40], size=24)
    assert main(["predict", model_file, *big]) == 0
    resized = _predicted(capsys.readouterr().out)
    same = [resized[b][0][0] == found[p][0][0] for b, p in zip(big, paths[:40], strict=True)]
    assert np.mean(same) >= 0.8

    # a bfloat16 export for batches of exactly 4 (the last batch padded)
    small = str(tmp_path / "bf16.jaxexport")
    assert main(["export", run, "--out", small, "--precision", "bfloat16", "--batch", "4"]) == 0
    capsys.readouterr()
    assert jexport.load(small).input_shape == (4, 8, 8, 1)
    assert main(["predict", small, *paths[:10]]) == 0
    bf16 = _predicted(capsys.readouterr().out)
    assert list(bf16) == paths[:10]
    assert np.mean([bf16[p][0][0] == found[p][0][0] for p in paths[:10]]) >= 0.9
