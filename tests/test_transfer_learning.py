"""examples/transfer_learning.py at small sizes: phase 1 leaves every backbone parameter
and statistic bitwise unchanged, phase 2 changes the top stage and nothing else of the
backbone, and the command line prints ``test_accuracy=`` after each phase."""

from __future__ import annotations

import importlib.util
import pathlib

import jax
import numpy as np
import pytest

import jaxnets as jn

_PATH = pathlib.Path(__file__).parent.parent / "examples" / "transfer_learning.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("transfer_learning", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _leaves(tree):
    return {
        jn.core.path_str(p): np.asarray(v) for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def _take(data, n):
    return jn.data.ArrayDataset(data.inputs[:n], data.labels[:n])


def test_phase_one_freezes_the_backbone_and_phase_two_trains_its_top_stage(example):
    backbone = jn.models.cifar_resnet(8, include_top=False, pooling="avg")
    old_train, old_test = example.digits_task([0, 1, 2, 3, 4], 8)
    params, state, _ = example.pretrain(
        backbone, _take(old_train, 64), _take(old_test, 32), 1, 32, 0
    )
    train, test = example.digits_task([5, 6, 7, 8, 9], 8)
    assert set(np.unique(train.labels)) == {0, 1, 2, 3, 4} and train.inputs.shape[1:] == (8, 8, 1)
    phases = example.transfer(
        backbone, params, state, _take(train, 96), _take(test, 64), top="stage3", epochs=(1, 1)
    )
    before, stats = _leaves(params), _leaves(state)
    assert any(k.startswith("stage3/") for k in before) and stats  # BatchNorm statistics

    one, two = (_leaves(p["params"]["backbone"]) for p in phases)
    assert all(np.array_equal(one[k], v) for k, v in before.items())  # bitwise unchanged
    for phase in phases:  # inference mode: the statistics never move
        after = _leaves(phase["state"]["backbone"])
        assert all(np.array_equal(after[k], v) for k, v in stats.items())
    changed = {k for k, v in before.items() if not np.array_equal(two[k], v)}
    assert changed and all(k.startswith("stage3/") for k in changed)
    assert {k for k in before if k.startswith("stage3/") and k.endswith("kernel")} <= changed
    heads = [p["params"]["head"]["kernel"] for p in phases]
    assert not np.array_equal(heads[0], heads[1])  # the head trains in both phases
    assert all(0.0 <= p["test_accuracy"] <= 1.0 for p in phases)


def test_the_command_line_prints_the_accuracy_after_each_phase(example, capsys):
    example.main(["--size", "8", "--pretrain-epochs", "1", "--epochs", "1", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert "pretrain_test_accuracy=" in lines[0]
    assert [line.split(" ")[:2] for line in lines[1:]] == [["phase", "1"], ["phase", "2"]]
    assert all("test_accuracy=" in line for line in lines[1:])


def test_weights_go_with_a_keras_backbone(example, capsys):
    with pytest.raises(SystemExit):
        example.main(["--weights", "resnet50_notop.h5"])
    assert "--weights goes with a keras backbone" in capsys.readouterr().err
