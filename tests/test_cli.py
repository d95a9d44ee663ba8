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


def _fails(capsys, argv, code=2):
    """Run ``main(argv)``; it must exit with ``code`` and one line on stderr, returned."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_registry_finds_the_zoo_and_only_models():
    registry = model_registry()
    assert {"mlp", "perceptron", "lenet5", "resnet20", "char_rnn"} <= set(registry)
    assert not {"sample", "train_char_lm", "evaluate_bpc"} & set(registry)


def test_train_mlp_on_xor_then_resume(tmp_path, capsys):
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
    # xor's 256 training examples less 26 held out for validation: 14 steps an epoch
    assert sorted(os.listdir(tmp_path / "checkpoints")) == [
        "best.jnc",
        "ckpt-00000014.jnc",
        "ckpt-00000028.jnc",
    ]
    rows = _lines(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2] and "val_loss" in rows[0]
    # Running again without --resume refuses to overwrite the run.
    err = _fails(capsys, ["train", "--out", str(tmp_path), *FAST, *args, "--epochs", "2"])
    assert "already holds a run" in err and "pass --resume" in err
    # --resume with another fixed option is refused, naming it and both values.
    changed = [a if a != "0.05" else "0.1" for a in args]
    err = _fails(capsys, ["train", "--out", str(tmp_path), *FAST, *changed, "--resume"])
    assert "argument --lr: --resume cannot change lr (the run has 0.05, got 0.1)" in err
    assert "--epochs" in err.split("may change on resume:")[1]
    # The same options again are accepted, and so is --resume with nothing else.
    assert _train(tmp_path, *args, "--epochs", "3", "--resume") == 0
    assert _train(tmp_path, "--epochs", "4", "--resume") == 0
    rows = _lines(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    with open(tmp_path / "results.json") as f:
        results = json.load(f)
    assert results["step"] == 56 and results["epochs_done"] == 4
    with open(tmp_path / "config.json") as f:
        config = json.load(f)
    assert config["epochs"] == 4 and config["lr"] == 0.05 and config["model_arg"] == ["hidden=(8,)"]


@pytest.mark.slow
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
    assert _train(tmp_path, "--epochs", "2", "--resume") == 0
    rows = _lines(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [12, 24]  # 898 - 90 held out = 808 examples
    assert rows[1]["loss"] < rows[0]["loss"]

    assert main(["evaluate", "--run", str(tmp_path), "--no-compile-cache"]) == 0
    out = capsys.readouterr().out
    assert "best.jnc (best; step " in out and "on the validation split (90 examples" in out
    assert "val_accuracy=" in out and "test_accuracy" not in out
    assert main(["evaluate", "--run", str(tmp_path), "--split", "test", "--no-compile-cache"]) == 0
    out = capsys.readouterr().out
    assert "on the test split (899 examples): test_accuracy=" in out


def test_evaluate_without_a_run_fails_clearly(tmp_path, capsys):
    err = _fails(capsys, ["evaluate", "--run", str(tmp_path), "--no-compile-cache"])
    assert "argument --run:" in err and "no config.json" in err


def test_summary(capsys):
    assert main(["summary", "--model", "lenet5", "--input-shape", "28,28,1"]) == 0
    assert "Total params: 61,706" in capsys.readouterr().out
    assert main(["summary", "--model", "mlp", "--dataset", "digits"]) == 0
    assert "(1, 8, 8, 1)" in capsys.readouterr().out
    assert "give --input-shape" in _fails(capsys, ["summary", "--model", "mlp"])


def test_unknown_model_and_missing_data_dir(tmp_path, capsys):
    err = _fails(capsys, ["train", "--out", str(tmp_path), "--model", "nope", "--dataset", "xor"])
    assert "argument --model: unknown model 'nope'; choose one of" in err
    err = _fails(capsys, ["train", "--out", str(tmp_path), "--model", "mlp", "--dataset", "mnist"])
    assert "reads its files from --data-dir" in err
    argv = ["train", "--out", str(tmp_path), "--model", "mlp", "--model-arg", "oops"]
    err = _fails(capsys, [*argv, "--dataset", "xor"])
    assert "argument --model-arg: expects NAME=VALUE, got 'oops'" in err
    assert os.listdir(tmp_path) == []  # nothing was created


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


@pytest.mark.slow
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
    assert "12/12" in proc.stderr  # the progress: 808 training examples, 12 steps
    assert "test_accuracy=" in proc.stdout
    assert os.path.exists(out / "checkpoints" / "ckpt-00000012.jnc")
    assert any("step" in name for name in os.listdir(cache))  # the train step was cached


def test_only_commands_that_train_or_evaluate_restart(monkeypatch, tmp_path, capsys):
    from jaxnets import process

    calls = []
    monkeypatch.setattr(process, "reexec_with_hugepages", lambda: calls.append("reexec"))
    argv = ["summary", "--model", "lenet5", "--input-shape", "28,28,1"]
    monkeypatch.setattr(sys, "argv", ["jaxnets", *argv])
    assert main() == 0 and calls == []  # summary never restarts
    for line in (["--help"], ["--version"], ["train", "--help"]):
        monkeypatch.setattr(sys, "argv", ["jaxnets", *line])
        with pytest.raises(SystemExit):
            main()
    assert calls == []
    monkeypatch.setattr(sys, "argv", ["jaxnets", "evaluate", "--run", str(tmp_path)])
    with pytest.raises(SystemExit):
        main()
    assert calls == ["reexec"]
    with pytest.raises(SystemExit):
        main(["evaluate", "--run", str(tmp_path)])  # from Python: never restarts
    assert calls == ["reexec"]


def _tunables_after(command):
    code = (
        "import os, sys; from jaxnets.cli import main; "
        f"sys.argv = ['jaxnets', *{command!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TUNABLES=' + os.environ.get('GLIBC_TUNABLES', ''))"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "JAXNETS_NO_HUGEPAGES")
    }
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or cpu_mode() != "madvise",
    reason="the restart happens only where huge pages are given on request",
)
def test_command_process_runs_with_the_hugepage_tunable(tmp_path):
    out = _tunables_after(["evaluate", "--run", str(tmp_path)])
    assert "TUNABLES=glibc.malloc.hugetlb=1" in out
    out = _tunables_after(["summary", "--model", "mlp", "--input-shape", "8"])
    assert "TUNABLES=\n" in out
