"""PNG pictures: curves, confusion matrix, image grid, first-layer filters."""

import jax
import numpy as np
import pytest

import jaxnets as jn
from jaxnets import plots


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_history_curves_with_lr(tmp_path):
    history = {
        "loss": [1.0, 0.6, 0.4],
        "accuracy": [0.5, 0.7, 0.8],
        "val_loss": [1.1, 0.8, 0.7],
        "val_accuracy": [0.4, 0.6, 0.7],
        "lr": [0.1, 0.05, 0.0],
        "epoch_time": [1, 1, 1],
    }
    path = plots.plot_history(history, str(tmp_path / "sub" / "curves.png"))
    assert _is_png(path)
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["curves.png"]


def test_confusion_matrix_counts_and_picture(tmp_path):
    labels, preds = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2]
    matrix = plots.confusion_matrix(labels, preds)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert matrix.sum() == 6
    assert _is_png(plots.plot_confusion_matrix(labels, preds, str(tmp_path / "c.png")))
    assert _is_png(
        plots.plot_confusion_matrix(
            labels, preds, str(tmp_path / "n.png"), class_names=["a", "b", "c"], normalize=True
        )
    )
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        plots.confusion_matrix([0, 1, 2], [0, 1])


def test_image_grid_of_digits_and_flat_vectors(tmp_path):
    train, _ = jn.data.load_digits()
    preds = train.labels.copy()
    preds[:3] = (preds[:3] + 1) % 10
    path = plots.plot_image_grid(train.inputs, train.labels, preds, str(tmp_path / "g.png"))
    assert _is_png(path)
    flat = train.inputs.reshape(len(train), 64)
    assert _is_png(plots.plot_image_grid(flat[:5], train.labels[:5], None, str(tmp_path / "f.png")))
    with pytest.raises(ValueError, match="cannot show inputs of shape"):
        plots.plot_image_grid(np.zeros((3, 5)), [0, 1, 2], None, str(tmp_path / "x.png"))


def test_first_layer_filters_of_a_cnn(tmp_path):
    model = jn.serial(
        ("conv1", jn.Conv(6, 3)), jn.Relu(), ("conv2", jn.Conv(4, 3)), jn.Flatten(), jn.Dense(2)
    )
    _, params, _ = model.init(jax.random.key(0), (1, 8, 8, 3))
    kernel = plots.first_conv_kernel(params)
    assert kernel.shape == (3, 3, 3, 6)
    np.testing.assert_array_equal(kernel, params["conv1"]["kernel"])
    assert _is_png(plots.plot_filters(params, str(tmp_path / "filters.png")))
    assert _is_png(plots.plot_filters(np.ones((5, 5, 1, 4)), str(tmp_path / "grey.png")))
    assert plots.first_conv_kernel({"dense": {"kernel": np.ones((2, 2))}}) is None
    with pytest.raises(ValueError, match="expected an HWIO kernel"):
        plots.plot_filters({"dense": {"kernel": np.ones((2, 2))}}, str(tmp_path / "no.png"))


def test_confusion_matrix_class_ids_are_checked():
    assert plots.confusion_matrix([0, 1], [1, 1], num_classes=3).shape == (3, 3)
    assert plots.confusion_matrix(np.array([0.0, 2.0]), [0, 2]).tolist()[2] == [0, 0, 1]
    with pytest.raises(ValueError, match=r"labels must be class ids in \[0, 2\).*\[2\]"):
        plots.confusion_matrix([0, 2], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match=r"predictions must be class ids >= 0.*\[-1\]"):
        plots.confusion_matrix([0, 1], [0, -1])


def test_nothing_is_written_for_a_refused_plot(tmp_path):
    with pytest.raises(ValueError, match="images must hold at least one image"):
        plots.plot_image_grid(np.zeros((0, 4, 4, 1)), [], None, str(tmp_path / "d" / "g.png"))
    assert not (tmp_path / "d").exists()
