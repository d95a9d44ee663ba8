"""Bad command lines: each case runs ``jaxnets.cli.main(argv)`` in-process in a fresh
temporary folder and must end with one line on stderr and the right exit status (2 for
a usage error, 1 for a run that fails), never a traceback. "nothing lost" cases run the
mistake on a copy of a finished run and check that every file of it is byte-identical
afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings

from bad_input import Bad, CommandError

from jaxnets.cli import main

FAST = ["--no-progress", "--no-compile-cache", "--quiet"]
XOR = ["--model", "mlp", "--model-arg", "hidden=(4,)", "--dataset", "xor", "--epochs", "1"]


def _run(argv: list[str], code: int = 2) -> None:
    """Run the command; raise CommandError(status, stderr) if it fails as it should."""
    err = io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # e.g. "skipping a damaged checkpoint"
        try:
            main(argv)
        except SystemExit as e:
            status = e.code
        else:
            raise AssertionError(f"jaxnets {' '.join(argv)} succeeded")
    text = err.getvalue()
    if status != code:
        raise AssertionError(f"exit status {status!r}, expected {code}; stderr: {text!r}")
    if text.count("\n") != 1 or not text.startswith("jaxnets"):
        raise AssertionError(f"not a one-line error: {text!r}")
    raise CommandError(status, text)


def _train(*extra: str, code: int = 2) -> None:
    """``jaxnets train`` into a fresh folder with ``extra`` options."""
    _run(["train", "--out", tempfile.mkdtemp(), *FAST, *extra], code)


def _xor(*extra: str) -> None:
    """``jaxnets train`` of a small MLP on xor, ``extra`` last (so it wins)."""
    _train(*XOR, *extra)


def _file() -> str:
    fd, path = tempfile.mkstemp()
    os.close(fd)
    return path


@functools.cache
def _finished_run() -> str:
    """A finished run (an MLP on xor, 2 epochs), trained once and copied by each case."""
    out = os.path.join(tempfile.mkdtemp(), "run")
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["train", "--out", out, *FAST, *XOR, "--epochs", "2", "--batch-size", "32"])
    return out


def _digest(folder: str) -> dict[str, str]:
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            found[os.path.relpath(os.path.join(root, name), folder) + "/"] = "dir"
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return found


def _on_run(make_argv, code: int = 2, damage=None) -> None:
    """Run ``make_argv(run)`` on a copy of a finished run (first ``damage(run)``) and
    check that it changed no file of the run before raising its CommandError."""
    run = os.path.join(tempfile.mkdtemp(), "run")
    shutil.copytree(_finished_run(), run)
    if damage is not None:
        damage(run)
    before = _digest(run)
    try:
        _run(make_argv(run), code)
    finally:
        after = _digest(run)
        if after != before:
            changed = sorted(
                k for k in before.keys() | after.keys() if before.get(k) != after.get(k)
            )
            raise AssertionError(f"the failing command changed the run: {changed}")


def _resume(*extra: str, code: int = 2, damage=None) -> None:
    _on_run(lambda run: ["train", "--out", run, "--resume", *FAST, *extra], code, damage)


def _evaluate(*extra: str, code: int = 2, damage=None) -> None:
    _on_run(lambda run: ["evaluate", "--run", run, "--no-compile-cache", *extra], code, damage)


def _damage_checkpoints(run: str) -> None:
    folder = os.path.join(run, "checkpoints")
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            data = f.read()
        os.remove(path)  # best.jnc may be a hard link: give each file its own damage
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])


def _damage_best(run: str) -> None:
    path = os.path.join(run, "checkpoints", "best.jnc")
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[-1] ^= 0xFF
    os.remove(path)
    with open(path, "wb") as f:
        f.write(bytes(data))


def _edit_config(drop: str | None = None, **changes):
    def damage(run: str) -> None:
        path = os.path.join(run, "config.json")
        with open(path) as f:
            config = json.load(f)
        config.update(changes)
        config.pop(drop, None)
        with open(path, "w") as f:
            json.dump(config, f)

    return damage


def _break_config(run: str) -> None:
    with open(os.path.join(run, "config.json"), "a") as f:
        f.write("}, oops")


def _summary(*extra: str) -> None:
    _run(["summary", *extra])


def _c(name, call, mentions, raises=CommandError):
    return Bad("cli", name, call, raises, tuple(mentions))


CASES = [
    # ranges and types of the training options
    _c("train --epochs 0", lambda: _xor("--epochs", "0"), ["--epochs", "'0'", "positive int"]),
    _c("train --epochs 2.5", lambda: _xor("--epochs", "2.5"), ["--epochs", "'2.5'"]),
    _c("train --batch-size 0", lambda: _xor("--batch-size", "0"), ["--batch-size", "'0'"]),
    _c("train --accumulate 0", lambda: _xor("--accumulate", "0"), ["--accumulate", "'0'"]),
    _c("train --lr 0", lambda: _xor("--lr", "0"), ["--lr", "'0'", "> 0"]),
    _c("train --lr -0.01", lambda: _xor("--lr", "-0.01"), ["--lr", "'-0.01'", "> 0"]),
    _c("train --lr nan", lambda: _xor("--lr", "nan"), ["--lr", "'nan'", "finite"]),
    _c("train --lr 1e-3x", lambda: _xor("--lr", "1e-3x"), ["--lr", "'1e-3x'"]),
    _c(
        "train --weight-decay -0.0001",
        lambda: _xor("--weight-decay", "-0.0001"),
        ["--weight-decay", "'-0.0001'", ">= 0"],
    ),
    _c("train --clip-norm 0", lambda: _xor("--clip-norm", "0"), ["--clip-norm", "'0'"]),
    _c(
        "train --loss-scale inf",
        lambda: _xor("--precision", "float16", "--loss-scale", "inf"),
        ["--loss-scale", "'inf'"],
    ),
    _c("train --seed -1", lambda: _xor("--seed", "-1"), ["--seed", "'-1'", ">= 0"]),
    _c("train --keep 0", lambda: _xor("--keep", "0"), ["--keep", "'0'"]),
    _c(
        "train --checkpoint-every 0",
        lambda: _xor("--checkpoint-every", "0"),
        ["--checkpoint-every", "'0'"],
    ),
    _c(
        "train --early-stopping 0",
        lambda: _xor("--early-stopping", "0"),
        ["--early-stopping", "'0'"],
    ),
    _c(
        "train --warmup-epochs -1",
        lambda: _xor("--warmup-epochs", "-1"),
        ["--warmup-epochs", "'-1'"],
    ),
    _c("train --val-split 1", lambda: _xor("--val-split", "1"), ["--val-split", "'1'", "< 1"]),
    _c(
        "train --val-split 0.001 holds out nothing",
        lambda: _xor("--val-split", "0.001"),
        ["--val-split", "0.001", "256"],
    ),
    _c("train --resize big", lambda: _xor("--resize", "big"), ["--resize", "'big'", "auto"]),
    _c(
        "train --optimizer adamx",
        lambda: _xor("--optimizer", "adamx"),
        ["--optimizer", "'adamx'", "adam"],
    ),
    _c("train --schedule cosin", lambda: _xor("--schedule", "cosin"), ["--schedule", "'cosin'"]),
    _c(
        "train --precision fp16",
        lambda: _xor("--precision", "fp16"),
        ["--precision", "'fp16'", "float16"],
    ),
    _c(
        "train --dataset imagenet",
        lambda: _train("--model", "mlp", "--dataset", "imagenet"),
        ["--dataset", "'imagenet'"],
    ),
    _c(
        "train --learning-rate (Keras' name)",
        lambda: _xor("--learning-rate", "0.1"),
        ["unrecognized arguments", "--learning-rate"],
    ),
    _c("train without --model", lambda: _train("--dataset", "xor"), ["required", "--model"]),
    # models and their arguments
    _c(
        "train --model nope",
        lambda: _train("--model", "nope", "--dataset", "xor"),
        ["--model", "'nope'", "lenet5"],
    ),
    _c(
        "train --model sample (a helper, not a model)",
        lambda: _train("--model", "sample", "--dataset", "xor"),
        ["--model", "'sample'"],
    ),
    _c(
        "train --model lenet5 on xor's vectors",
        lambda: _train("--model", "lenet5", "--dataset", "xor"),
        ["--model", "lenet5", "xor"],
    ),
    _c(
        "train --model char_rnn without vocab_size",
        lambda: _train("--model", "char_rnn", "--dataset", "xor"),
        ["--model-arg", "char_rnn", "vocab_size"],
    ),
    _c(
        "train --model-arg without =",
        lambda: _xor("--model-arg", "oops"),
        ["--model-arg", "NAME=VALUE", "'oops'"],
    ),
    _c(
        "train --model-arg misspelt name",
        lambda: _xor("--model-arg", "hiden=(4,)"),
        ["--model-arg", "'hiden'", "hidden"],
    ),
    _c(
        "train --model-arg not a literal",
        lambda: _xor("--model-arg", "dropout=0.2.1"),
        ["--model-arg", "dropout=0.2.1", "literal"],
    ),
    _c(
        "train --model-arg given twice",
        lambda: _xor("--model-arg", "hidden=(8,)"),
        ["--model-arg", "hidden", "twice"],
    ),
    _c(
        "train --model-arg hidden=True",
        lambda: _train("--model", "mlp", "--dataset", "xor", "--model-arg", "hidden=True"),
        ["--model-arg", "hidden=True"],
    ),
    _c(
        "train --model-arg num_classes=1 for 2 classes",
        lambda: _xor("--model-arg", "num_classes=1"),
        ["--model-arg", "num_classes=1", "2 classes"],
    ),
    # options that conflict or do nothing
    _c(
        "train --data-dir with a built-in data set",
        lambda: _xor("--data-dir", tempfile.mkdtemp()),
        ["--data-dir", "xor", "built in"],
    ),
    _c(
        "train --dataset mnist without --data-dir",
        lambda: _train("--model", "mlp", "--dataset", "mnist"),
        ["--data-dir", "mnist"],
    ),
    _c(
        "train --data-dir that does not exist",
        lambda: _train("--model", "mlp", "--dataset", "mnist", "--data-dir", "/no/such/dir"),
        ["--data-dir", "'/no/such/dir'"],
    ),
    _c(
        "train --data-dir without the files",
        lambda: _train("--model", "mlp", "--dataset", "mnist", "--data-dir", tempfile.mkdtemp()),
        ["--data-dir", "mnist", "idx"],
    ),
    _c(
        "train --loss-scale without float16",
        lambda: _xor("--loss-scale", "1024"),
        ["--loss-scale", "1024", "float16"],
    ),
    _c(
        "train --warmup-epochs with a constant schedule",
        lambda: _xor("--warmup-epochs", "2"),
        ["--warmup-epochs", "2", "warmup_cosine"],
    ),
    _c(
        "train --warmup-epochs as long as the run",
        lambda: _xor("--schedule", "warmup_cosine", "--warmup-epochs", "3", "--epochs", "3"),
        ["--warmup-epochs", "3", "--epochs 3"],
    ),
    _c(
        "train --early-stopping with --val-split 0",
        lambda: _xor("--early-stopping", "2", "--val-split", "0"),
        ["--early-stopping", "--val-split 0"],
    ),
    _c(
        "train --compile-cache with --no-compile-cache",
        lambda: _xor("--compile-cache", tempfile.mkdtemp()),
        ["--compile-cache", "--no-compile-cache"],
    ),
    _c(
        "train --resize 28 on vectors", lambda: _xor("--resize", "28"), ["--resize", "28", "images"]
    ),
    _c(
        "train --freeze matching no parameter",
        lambda: _xor("--freeze", "conv1/*"),
        ["--freeze", "'conv1/*'", "hidden_0"],
    ),
    _c(
        "train --freeze of every parameter",
        lambda: _xor("--freeze", "*"),
        ["--freeze", "'*'", "every parameter"],
    ),
    _c(
        "train --batch-size above the training split",
        lambda: _xor("--batch-size", "250"),
        ["--batch-size", "250", "230 training examples"],
    ),
    _c("train --out is a file", lambda: _xor("--out", _file()), ["--out", "is a file"]),
    _c(
        "train --out inside a file",
        lambda: _xor("--out", os.path.join(_file(), "run")),
        ["--out", "which is a file"],
    ),
    # resume and the run in --out: nothing lost
    _c(
        "train over a run without --resume (nothing lost)",
        lambda: _on_run(lambda run: ["train", "--out", run, *FAST, *XOR]),
        ["--out", "already holds a run", "--resume"],
    ),
    _c(
        "train --resume with no run in --out",
        lambda: _train("--resume", "--epochs", "3"),
        ["--out", "no config.json"],
    ),
    _c(
        "train --resume changing --lr (nothing lost)",
        lambda: _resume("--epochs", "3", "--lr", "0.01"),
        ["--lr", "0.01", "--epochs"],
    ),
    _c(
        "train --resume changing --model (nothing lost)",
        lambda: _resume("--epochs", "3", "--model", "perceptron"),
        ["--model", "'perceptron'"],
    ),
    _c(
        "train --resume changing --val-split (nothing lost)",
        lambda: _resume("--epochs", "3", "--val-split", "0.2"),
        ["--val-split", "0.2", "0.1"],
    ),
    _c(
        "train --resume with fewer epochs (nothing lost)",
        lambda: _resume("--epochs", "1"),
        ["--epochs", "1", "2 epochs"],
    ),
    _c(
        "train --resume with a broken config.json (nothing lost)",
        lambda: _resume("--epochs", "3", damage=_break_config),
        ["--out", "config.json"],
    ),
    _c(
        "train --resume of a run validated on the test set (nothing lost)",
        lambda: _resume("--epochs", "3", damage=_edit_config(drop="val_split")),
        ["--out", "val_split", "test set"],
    ),
    _c(
        "train --resume with every checkpoint damaged (nothing lost)",
        lambda: _resume("--epochs", "3", code=1, damage=_damage_checkpoints),
        ["damaged", "checkpoint"],
    ),
    # evaluate
    _c(
        "evaluate --run that does not exist",
        lambda: _run(["evaluate", "--run", "/no/such/run"]),
        ["--run", "'/no/such/run'"],
    ),
    _c(
        "evaluate --run without a config.json",
        lambda: _run(["evaluate", "--run", tempfile.mkdtemp()]),
        ["--run", "no config.json"],
    ),
    _c(
        "evaluate --checkpoint that does not exist (nothing lost)",
        lambda: _evaluate("--checkpoint", "ckpt-9.jnc"),
        ["--checkpoint", "'ckpt-9.jnc'"],
    ),
    _c(
        "evaluate --split train",
        lambda: _evaluate("--split", "train"),
        ["--split", "'train'", "val"],
    ),
    _c(
        "evaluate --data-dir on a built-in data set (nothing lost)",
        lambda: _evaluate("--data-dir", tempfile.mkdtemp()),
        ["--data-dir", "xor"],
    ),
    _c(
        "evaluate a damaged best.jnc (nothing lost)",
        lambda: _evaluate(code=1, damage=_damage_best),
        ["--checkpoint best", "checksum"],
    ),
    _c(
        "evaluate --split val of a run without validation (nothing lost)",
        lambda: _evaluate(damage=_edit_config(val_split=0)),
        ["--split", "--val-split 0"],
    ),
    # summary, demo, the command itself
    _c(
        "summary --input-shape 28,x,1",
        lambda: _summary("--model", "lenet5", "--input-shape", "28,x,1"),
        ["--input-shape", "'28,x,1'"],
    ),
    _c(
        "summary --input-shape with --dataset",
        lambda: _summary("--model", "mlp", "--input-shape", "8,8,1", "--dataset", "digits"),
        ["--input-shape", "--dataset"],
    ),
    _c(
        "summary --num-classes with --dataset",
        lambda: _summary("--model", "mlp", "--dataset", "xor", "--num-classes", "3"),
        ["--num-classes", "xor"],
    ),
    _c(
        "summary --num-classes 0",
        lambda: _summary("--model", "mlp", "--input-shape", "8", "--num-classes", "0"),
        ["--num-classes", "'0'"],
    ),
    _c(
        "summary --resize with --input-shape",
        lambda: _summary("--model", "lenet5", "--input-shape", "8,8,1", "--resize", "28"),
        ["--resize", "--input-shape"],
    ),
    _c(
        "summary --input-shape lenet5 cannot take",
        lambda: _summary("--model", "lenet5", "--input-shape", "5"),
        ["--input-shape", "lenet5", "(5,)"],
    ),
    _c("summary without --model", lambda: _summary("--input-shape", "8"), ["required", "--model"]),
    _c("demo --epochs 0", lambda: _run(["demo", "--epochs", "0"]), ["--epochs", "'0'"]),
    _c("no command", lambda: _run([]), ["required", "command"]),
    _c("unknown command fit", lambda: _run(["fit"]), ["invalid choice", "'fit'"]),
]
