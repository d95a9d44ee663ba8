"""GANs trained through fit: the train_gan helper, sample grids, the example's command."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import jaxnets as jn
from jaxnets import gan

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "gan_digits.py")


def _data(n=32):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(n, 8, 8, 1)).astype(np.float32)
    return jn.data.ArrayDataset(images, rng.integers(0, 10, n).astype(np.int32))


@pytest.mark.parametrize("conditional", [False, True])
def test_train_gan_updates_both_parts_and_writes_grids(tmp_path, conditional):
    classes = 10 if conditional else None
    g = jn.models.mlp_generator(4, hidden=(16,), num_classes=classes)
    d = jn.models.mlp_discriminator(hidden=(16,), num_classes=classes)
    grid = gan.SampleGrid(g, 4, str(tmp_path / "samples"), num_classes=classes, n=16, per_class=3)
    result = gan.train_gan(
        g,
        d,
        4,
        _data(),
        conditional=conditional,
        epochs=2,
        batch_size=8,
        callbacks=[grid],
        progress=False,
    )
    ts = result.state
    assert int(ts.step) == 8 and sorted(ts.params) == ["discriminator", "generator"]
    for name in ("discriminator_loss", "generator_loss", "d_real", "d_fake", "loss"):
        assert len(result.history[name]) == 2, name
    assert 0 < result.history["d_real"][-1] < 1
    names = sorted(os.listdir(tmp_path / "samples"))
    assert names == ["epoch_0001.png", "epoch_0002.png", "final.png"]
    images = grid.images(ts)
    assert images.shape == ((30 if conditional else 16), 8, 8, 1)
    assert np.all(np.abs(images) <= 1)
    if conditional:  # one row per class, the same noise in every row
        np.testing.assert_array_equal(grid.noise[:3], grid.noise[3:6])
        assert grid.labels.tolist()[:6] == [0, 0, 0, 1, 1, 1]
        assert not np.allclose(images[:3], images[3:6])


def test_the_generator_changes_and_the_grid_noise_is_fixed(tmp_path):
    g = jn.models.mlp_generator(4, hidden=(16,))
    d = jn.models.mlp_discriminator(hidden=(16,))
    grid = gan.SampleGrid(g, 4, str(tmp_path), n=8, seed=3)
    first = gan.train_gan(g, d, 4, _data(), epochs=1, batch_size=8, progress=False)
    again = gan.train_gan(g, d, 4, _data(), epochs=1, batch_size=8, progress=False)
    np.testing.assert_array_equal(grid.images(first.state), grid.images(again.state))
    longer = gan.train_gan(g, d, 4, _data(), epochs=3, batch_size=8, progress=False)
    assert not np.allclose(grid.images(first.state), grid.images(longer.state))
    same = gan.SampleGrid(g, 4, str(tmp_path), n=8, seed=3)
    np.testing.assert_array_equal(grid.noise, same.noise)


def test_plot_gan_history_and_samples(tmp_path):
    history = {
        "discriminator_loss": [1.3, 1.2],
        "generator_loss": [0.8, 0.9],
        "d_real": [0.6, 0.55],
        "d_fake": [0.4, 0.45],
    }
    path = gan.plot_gan_history(history, str(tmp_path / "curves.png"))
    assert os.path.getsize(path) > 1000
    with pytest.raises(ValueError, match=r"plot_samples: expected images \(N, H, W, 1 or 3\)"):
        jn.plots.plot_samples(np.zeros((4, 8, 8)), str(tmp_path / "x.png"))


@pytest.mark.slow
def test_the_example_runs_as_a_user_would(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            EXAMPLE,
            "--epochs",
            "2",
            "--conditional",
            "--no-progress",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    names = [item.split("=")[0] for item in last.split()]
    assert names == [
        "inception_score",
        "confident_share",
        "min_class_share",
        "frechet",
        "frechet_real",
        "conditional_accuracy",
    ]
    values = {k: float(v) for k, v in (item.split("=") for item in last.split())}
    assert 1.0 <= values["inception_score"] <= 10.0 and values["frechet"] > 0
    assert sorted(os.listdir(out)) == ["losses.png", "results.json", "samples"]
    assert "final.png" in os.listdir(out / "samples")
