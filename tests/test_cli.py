"""The jaxnets command: train, resume, evaluate, summary, --help."""

import argparse
import json
import os
import subprocess
import sys

import pytest

from jaxnets.cli import build_parser, main, model_registry
from jaxnets.process import transparent_hugepage_mode as cpu_mode

FAST = ["--no-progress", "--no-compile-cache", "--quiet"]


def _train(out, *extra):
    return main(["train", "--out", str(out), *FAST, *extra])


def _lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_registry_finds_the_zoo():
    registry = model_registry()
    assert {"mlp", "perceptron", "lenet5"} <= set(registry)


def test_train_mlp_on_xor_then_resume(tmp_path):
    args = [
        "--model",
        "mlp",
        "--model-arg",
        "hidden=(8,)",
        "--dataset",
        "xor",
        "--batch-size",
        "16",
        "--optimizer",
        "momentum",
        "--lr",
        "0.05",
        "--schedule",
        "cosine",
        "--tensorboard",
    ]
    assert _train(tmp_path, *args, "--epochs", "2") == 0
    names = sorted(os.listdir(tmp_path))
    assert names == [
        "checkpoints",
        "config.json",
        "metrics.csv",
        "metrics.jsonl",
        "plots",
        "results.json",
        "tensorboard",
    ]
    assert sorted(os.listdir(tmp_path / "plots")) == ["confusion.png", "curves.png"]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == [
        "best.jnc",
        "ckpt-00000016.jnc",
        "ckpt-00000032.jnc",
    ]
    assert [r["epoch"] for r in _lines(tmp_path / "metrics.jsonl")] == [1, 2]
    # Running again without --resume refuses to overwrite the run.
    with pytest.raises(SystemExit, match="already holds checkpoints; pass --resume"):
        _train(tmp_path, *args, "--epochs", "2")
    # --resume with other options is refused, naming them.
    with pytest.raises(SystemExit, match=r"lr: 0.05 -> 0.1"):
        _train(tmp_path, *[a if a != "0.05" else "0.1" for a in args], "--epochs", "3", "--resume")
    assert _train(tmp_path, *args, "--epochs", "3", "--resume") == 0
    rows = _lines(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    with open(tmp_path / "results.json") as f:
        results = json.load(f)
    assert results["step"] == 48 and results["epochs_done"] == 3


def test_train_lenet5_on_digits_resizes_and_resumes(tmp_path, capsys):
    args = ["--model", "lenet5", "--dataset", "digits", "--batch-size", "64"]
    assert (
        main(
            [
                "train",
                "--out",
                str(tmp_path),
                "--no-progress",
                "--no-compile-cache",
                *args,
                "--epochs",
                "1",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "resizing to 28x28" in printed and "test_accuracy=" in printed
    assert sorted(os.listdir(tmp_path / "plots")) == [
        "confusion.png",
        "curves.png",
        "filters.png",
        "predictions.png",
    ]
    assert _train(tmp_path, *args, "--epochs", "2", "--resume") == 0
    rows = _lines(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [14, 28]
    assert rows[1]["loss"] < rows[0]["loss"]

    assert main(["evaluate", "--run", str(tmp_path), "--no-compile-cache"]) == 0
    out = capsys.readouterr().out
    assert "best.jnc (step 28): test_accuracy=" in out


def test_evaluate_without_a_run_fails_clearly(tmp_path):
    with pytest.raises(SystemExit, match=r"has no config\.json"):
        main(["evaluate", "--run", str(tmp_path), "--no-compile-cache"])


def test_summary(capsys):
    assert main(["summary", "--model", "lenet5", "--input-shape", "28,28,1"]) == 0
    assert "Total params: 61,706" in capsys.readouterr().out
    assert main(["summary", "--model", "mlp", "--dataset", "digits"]) == 0
    assert "(1, 8, 8, 1)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="give --input-shape"):
        main(["summary", "--model", "mlp"])


def test_unknown_model_and_missing_data_dir(tmp_path):
    with pytest.raises(SystemExit, match="unknown model 'nope'; choose one of"):
        _train(tmp_path, "--model", "nope", "--dataset", "xor")
    with pytest.raises(SystemExit, match="reads its files from --data-dir"):
        _train(tmp_path, "--model", "mlp", "--dataset", "mnist")
    with pytest.raises(SystemExit, match="--model-arg expects NAME=VALUE"):
        _train(tmp_path, "--model", "mlp", "--model-arg", "oops", "--dataset", "xor")


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def test_help_documents_every_option(capsys):
    parser = build_parser()
    commands = _subparsers(parser)
    assert {"train", "evaluate", "summary", "demo"} <= set(commands)
    for name, sub in commands.items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        text = capsys.readouterr().out
        for action in sub._actions:
            for option in action.option_strings:
                assert option in text, (name, option)


def test_command_line_subprocess_shows_progress_and_uses_the_cache(tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    cmd = [
        sys.executable,
        "-m",
        "jaxnets",
        "train",
        "--model",
        "lenet5",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--out",
        str(out),
        "--compile-cache",
        str(cache),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "14/14" in proc.stderr and "step/s" in proc.stderr  # the tqdm progress bar
    assert "test_accuracy=" in proc.stdout
    assert os.path.exists(out / "checkpoints" / "ckpt-00000014.jnc")
    assert any("step" in name for name in os.listdir(cache))  # the train step was cached


def test_command_restarts_with_hugepages_only_as_a_program(monkeypatch):
    from jaxnets import process

    calls = []
    monkeypatch.setattr(process, "reexec_with_hugepages", lambda: calls.append("reexec"))
    argv = ["summary", "--model", "lenet5", "--input-shape", "28,28,1"]
    monkeypatch.setattr(sys, "argv", ["jaxnets", *argv])
    assert main() == 0 and calls == ["reexec"]
    assert main(argv) == 0 and calls == ["reexec"]  # from Python: never restarts


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or cpu_mode() != "madvise",
    reason="the restart happens only where huge pages are given on request",
)
def test_command_process_runs_with_the_hugepage_tunable():
    code = (
        "import os, sys; from jaxnets.cli import main; "
        "sys.argv = ['jaxnets', 'summary', '--model', 'mlp', '--input-shape', '8']; "
        "main(); print('TUNABLES=' + os.environ.get('GLIBC_TUNABLES', ''))"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "JAXNETS_NO_HUGEPAGES")
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "TUNABLES=glibc.malloc.hugetlb=1" in out
