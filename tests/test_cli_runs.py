"""The command's methodology: validation from the training data, the test set once at the
end, the best checkpoint chosen on validation; resume from config.json; --version."""

import importlib
import json
import os

import numpy as np
import pytest

import jaxnets
from jaxnets.cli import main
from jaxnets.cli import registry as cli_registry
from jaxnets.data import ArrayDataset, load_digits
from jaxnets.data.split import validation_split
from jaxnets.train.checkpoint import read_checkpoint

FAST = ["--no-progress", "--no-compile-cache"]


def _json(path):
    with open(path) as f:
        return json.load(f)


def _rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_lenet5_on_digits_validates_on_the_training_half_and_tests_once(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", "lenet5", "--dataset", "digits", "--out", str(out), *FAST]
    assert main([*argv, "--epochs", "3", "--batch-size", "32", "--lr", "3e-3"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    config, results = _json(out / "config.json"), _json(out / "results.json")

    # validation: a seeded 10% of the 898 training images, recorded in the config
    assert config["val_split"] == 0.1 and config["seed"] == 0
    assert config["validation"] == {"source": "val_split", "val_split": 0.1, "examples": 90}
    train, test = load_digits()
    rest, val = validation_split(train, 0.1, seed=0)
    assert (len(rest), len(val), results["test_examples"]) == (808, 90, len(test))
    # the epochs were validated on those 90 images, not on the 899 test images
    rows = _rows(out / "metrics.jsonl")
    assert len(rows) == 3 and all("val_loss" in r and "val_accuracy" in r for r in rows)
    assert not any(k.startswith("test_") for r in rows for k in r)
    # the test set is reported once, at the end: printed and in results.json
    assert printed.count("test_accuracy=") == 1 and printed.count("test_loss=") == 1
    assert {"test_loss", "test_accuracy", "val_loss", "val_accuracy"} <= set(results)
    assert results["val_loss"] != results["test_loss"]
    assert results["val_accuracy"] != results["test_accuracy"]
    # best.jnc is the epoch with the lowest val_loss, and it is the one tested
    best_epoch = int(np.argmin([r["val_loss"] for r in rows])) + 1
    meta = read_checkpoint(str(out / "checkpoints" / "best.jnc"))[1]
    assert meta["epoch"] == best_epoch
    assert meta["logs"]["val_loss"] == min(r["val_loss"] for r in rows)
    assert results["tested"]["checkpoint"] == "best.jnc"
    assert results["tested"]["epoch"] == best_epoch
    assert results["tested"]["monitor"] == "val_loss"
    assert results["val_loss"] == rows[best_epoch - 1]["val_loss"]
    assert f"best.jnc (epoch {best_epoch}, chosen on val_loss" in printed
    # evaluate says which split; the validation split gives the training-time numbers
    assert main(["evaluate", "--run", str(out), "--no-compile-cache", "--quiet"]) == 0
    assert main(["evaluate", "--run", str(out), "--no-compile-cache"]) == 0
    said = capsys.readouterr().out
    assert "on the validation split (90 examples held out of the training data" in said
    assert f"val_loss={results['val_loss']:.4f}" in said
    assert main(["evaluate", "--run", str(out), "--no-compile-cache", "--split", "test"]) == 0
    said = capsys.readouterr().out
    assert "on the test split (899 examples)" in said
    assert f"test_accuracy={results['test_accuracy']:.4f}" in said


def test_validation_split_is_seeded_disjoint_and_complete():
    data = ArrayDataset(np.arange(50.0)[:, None], np.arange(50))
    train, val = validation_split(data, 0.2, seed=3)
    again, val_again = validation_split(data, 0.2, seed=3)
    assert len(val) == 10 and len(train) == 40
    np.testing.assert_array_equal(val.labels, val_again.labels)
    assert sorted([*train.labels.tolist(), *val.labels.tolist()]) == list(range(50))
    assert list(val.labels) == sorted(val.labels)  # the original order is kept
    other = validation_split(data, 0.2, seed=4)[1]
    assert set(other.labels.tolist()) != set(val.labels.tolist())
    np.testing.assert_array_equal(train.inputs[:, 0], train.labels)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fraction": 0.0}, ValueError, "fraction must be a finite number > 0 and < 1, got 0.0"),
        ({"fraction": 1}, ValueError, "got 1"),
        ({"fraction": "0.1"}, TypeError, "got '0.1' (a str)"),
        ({"fraction": 0.01}, ValueError, "fraction 0.01 of 20 examples holds out 0"),
        ({"fraction": 0.1, "seed": -1}, ValueError, "seed must be an int >= 0, got -1"),
    ],
)
def test_validation_split_refuses_bad_arguments(kwargs, error, message):
    data = ArrayDataset(np.zeros((20, 2)), np.zeros(20, np.int32))
    with pytest.raises(error, match="validation_split: ") as info:
        validation_split(data, **kwargs)
    assert message in str(info.value)


def test_a_data_set_with_its_own_validation_set(tmp_path, monkeypatch, capsys):
    cli_prepare = importlib.import_module("jaxnets.cli.prepare")  # the module, not the function
    from jaxnets import data

    parts = cli_registry.Splits(data.xor(repeat=32), data.xor(repeat=2), data.xor())
    monkeypatch.setattr(cli_prepare, "load_dataset", lambda name, data_dir=None: parts)
    argv = ["train", "--model", "mlp", "--dataset", "xor", "--epochs", "1", *FAST, "--quiet"]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--out", str(tmp_path / "a"), "--val-split", "0.2"])
    assert info.value.code == 2
    assert (
        "argument --val-split: --dataset xor has its own validation set" in capsys.readouterr().err
    )
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    config = _json(tmp_path / "b" / "config.json")
    assert config["validation"] == {"source": "dataset", "examples": 8}
    assert _json(tmp_path / "b" / "results.json")["validation"]["source"] == "dataset"


def test_val_split_zero_keeps_no_validation(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", "mlp", "--dataset", "xor", "--epochs", "2", "--out", str(out)]
    assert main([*argv, *FAST, "--val-split", "0", "--batch-size", "64"]) == 0
    printed = capsys.readouterr().out
    assert "chosen on the training loss: --val-split 0" in printed
    rows = _rows(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [4, 8] and "val_loss" not in rows[0]
    assert _json(out / "results.json")["tested"]["monitor"] == "loss"


def test_version_and_the_versions_in_config(tmp_path, capsys):
    import jax

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"jaxnets {jaxnets.__version__} (jax {jax.__version__}, jaxlib ")
    out = tmp_path / "run"
    argv = ["train", "--model", "perceptron", "--dataset", "xor", "--epochs", "1"]
    assert main([*argv, "--out", str(out), *FAST, "--quiet"]) == 0
    versions = _json(out / "config.json")["versions"]
    assert versions["jaxnets"] == jaxnets.__version__ and versions["jax"] == jax.__version__
    assert versions["jaxlib"] and versions["jaxlib"] in text


def test_train_help_lists_what_may_change_on_resume(capsys):
    from jaxnets.cli import RESUME_KEYS, RESUME_MAY_CHANGE

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    listed = text.split("only these may change:")[1].split("--keep KEEP")[0]
    listed = {item.strip(" ,") for item in listed.split()}
    may = {"--" + k.replace("_", "-") for k in RESUME_MAY_CHANGE if k != "out"}
    assert listed == may and "--epochs" in may and "--lr" not in may
    assert not {"--" + k.replace("_", "-") for k in RESUME_KEYS} & listed


def test_resume_keeps_the_run_and_reads_its_options(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", "mlp", "--model-arg", "hidden=(4,)", "--dataset", "spirals"]
    assert main([*argv, "--epochs", "1", "--seed", "3", "--out", str(out), *FAST, "--quiet"]) == 0
    first = _json(out / "config.json")
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", *FAST, "--quiet"]) == 0
    second = _json(out / "config.json")
    assert {k: v for k, v in second.items() if k != "epochs"} == {
        k: v for k, v in first.items() if k != "epochs"
    }
    assert second["epochs"] == 2 and second["seed"] == 3
    assert _json(out / "results.json")["epochs_done"] == 2
    assert os.path.isfile(out / "checkpoints" / "best.jnc")
