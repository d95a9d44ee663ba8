"""Bad inputs of jaxnets.export (export, save, load, the loaded model) and of the
``jaxnets export`` and ``jaxnets predict`` commands. Command cases run ``main(argv)`` as
``tests/bad_inputs_cli.py`` does (one line on stderr, exit 2 or 1); "nothing lost" cases
run the mistake on a copy of a finished run holding an earlier export and check that
every file of it is byte-identical afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import struct
import tempfile
import warnings

import jax
import numpy as np
from bad_input import Bad, CommandError
from bad_inputs_cli import FAST, _damage_checkpoints, _finished_run, _on_run, _run

import jaxnets as jn
from jaxnets import export as jexport
from jaxnets.cli import main


@functools.cache
def _model():
    model = jn.serial(jn.Conv(2, (3, 3)), jn.Flatten(), jn.Dense(3))
    _, params, state = model.init(jax.random.key(0), (1, 8, 8, 1))
    return model, params, state


def _export(**kwargs):
    model, params, state = _model()
    return jexport.export(model, params, state, (1, 8, 8, 1), **kwargs)


def _batch_bound_export():
    """A model whose Python code turns the batch size into an int (a symbol cannot be)."""
    model = jn.serial(jn.Lambda(lambda x: x.reshape(int(x.shape[0]) * 2, -1)), jn.Dense(2))
    _, params, state = model.init(jax.random.key(0), (2, 4))
    return jexport.export(model, params, state, (2, 4))


def _folder() -> str:
    return tempfile.mkdtemp()


@functools.cache
def _saved(batch="dynamic") -> str:
    return jexport.save(_export(batch=batch), os.path.join(_folder(), "model.jaxexport"))


def _damaged(change) -> str:
    """A copy of a saved export with ``change(bytearray)`` applied."""
    with open(_saved(), "rb") as f:
        data = bytearray(f.read())
    data = change(data)
    path = os.path.join(_folder(), "damaged.jaxexport")
    with open(path, "wb") as f:
        f.write(bytes(data))
    return path


def _flip_last(data: bytearray) -> bytearray:
    data[-1] ^= 0xFF
    return data


def _newer(data: bytearray) -> bytearray:
    data[len(jexport.MAGIC) : len(jexport.MAGIC) + 4] = struct.pack("<I", jexport.VERSION + 1)
    return data


def _text_file(name: str = "notes.txt", text: str = "not an export") -> str:
    path = os.path.join(_folder(), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def _quiet_main(argv: list[str]) -> None:
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        assert main(argv) == 0


@functools.cache
def _xor_export() -> str:
    """An export of the finished MLP-on-xor run: its inputs are (batch, 2), not images."""
    path = os.path.join(_folder(), "xor.jaxexport")
    _quiet_main(["export", _finished_run(), "--out", path, "--quiet"])
    return path


@functools.cache
def _digits_export() -> str:
    """An export of a small MLP trained for one epoch on the digits (10 classes)."""
    run = os.path.join(_folder(), "run")
    argv = ["train", "--model", "mlp", "--model-arg", "hidden=(8,)", "--dataset", "digits"]
    _quiet_main([*argv, "--epochs", "1", "--out", run, *FAST])
    path = os.path.join(_folder(), "digits.jaxexport")
    _quiet_main(["export", run, "--out", path, "--quiet"])
    return path


def _png() -> str:
    from PIL import Image

    path = os.path.join(_folder(), "digit.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    return path


def _export_cmd(*argv: str, code: int = 2) -> None:
    _run(["export", *argv], code)


def _predict(*argv: str, code: int = 2) -> None:
    _run(["predict", *argv], code)


def _export_over(extra: list[str], code: int = 2, damage=None) -> None:
    """``jaxnets export`` of a copy of the finished run into a file that already holds an
    earlier export inside the run (so the unchanged-files check covers it)."""

    def prepared(run: str) -> None:
        _quiet_main(["export", run, "--out", os.path.join(run, "model.jaxexport"), "--quiet"])
        if damage is not None:
            damage(run)

    _on_run(
        lambda run: ["export", run, "--out", os.path.join(run, "model.jaxexport"), *extra],
        code,
        prepared,
    )


def _e(name, call, raises, mentions):
    return Bad("export", name, call, raises, tuple(mentions))


def _c(name, call, mentions):
    return Bad("cli", name, call, CommandError, tuple(mentions))


CASES = [
    # export
    _e(
        "model that is not a Layer",
        lambda: jexport.export(lambda x: x, {}, {}, (1, 3)),
        TypeError,
        ["export: model", "jaxnets Layer", "function"],
    ),
    _e(
        "input_spec a string",
        lambda: jexport.export(_model()[0], _model()[1], {}, "8,8,1"),
        TypeError,
        ["export: input_spec", "'8,8,1'"],
    ),
    _e(
        "input_spec without a batch axis",
        lambda: jexport.export(_model()[0], _model()[1], {}, ()),
        ValueError,
        ["export: input_spec", "batch axis", "()"],
    ),
    _e(
        "input_spec the model does not take",
        lambda: jexport.export(_model()[0], _model()[1], {}, (1, 8, 8)),
        ValueError,
        ["export: the model does not take input_spec", "(1, 8, 8)"],
    ),
    _e(
        "params of another model",
        lambda: jexport.export(_model()[0], {"kernel": np.zeros(3)}, {}, (1, 8, 8, 1)),
        ValueError,
        ["export: params", "missing", "conv_0/bias"],
    ),
    _e(
        "a model that needs a constant batch size",
        lambda: _batch_bound_export(),
        ValueError,
        ["export: the model cannot be exported with a symbolic batch size", "batch=N"],
    ),
    _e("batch 0", lambda: _export(batch=0), ValueError, ["export: batch", "'dynamic'", "0"]),
    _e("batch 'auto'", lambda: _export(batch="auto"), ValueError, ["export: batch", "'auto'"]),
    _e(
        "precision float16",
        lambda: _export(precision="float16"),
        ValueError,
        ["export: precision", "'bfloat16'", "'float16'"],
    ),
    _e(
        "platform gpu (jax.export says cuda)",
        lambda: _export(platform="gpu"),
        ValueError,
        ["export: platform", "'cuda'", "'gpu'"],
    ),
    # save
    _e(
        "save what is not an export",
        lambda: jexport.save(_model(), os.path.join(_folder(), "m")),
        TypeError,
        ["save: exported", "jax.export.Exported", "tuple"],
    ),
    _e(
        "save two class names for three outputs",
        lambda: jexport.save(_export(), os.path.join(_folder(), "m"), class_names=["a", "b"]),
        ValueError,
        ["save: 2 class_names", "(None, 3)"],
    ),
    _e(
        "save class_names a string",
        lambda: jexport.save(_export(), os.path.join(_folder(), "m"), class_names="abc"),
        TypeError,
        ["save: class_names", "list of strings", "'abc'"],
    ),
    _e(
        "save metadata that is not JSON",
        lambda: jexport.save(_export(), os.path.join(_folder(), "m"), metadata={"x": np.ones(2)}),
        TypeError,
        ["save: metadata", "JSON", "ndarray"],
    ),
    # load and the loaded model
    _e(
        "load a file that is not an export",
        lambda: jexport.load(_text_file()),
        ValueError,
        ["load:", "notes.txt", "not a jaxnets export", "JAXNETS-EXPORT"],
    ),
    _e(
        "load a truncated export",
        lambda: jexport.load(_damaged(lambda d: d[: len(d) // 2])),
        ValueError,
        ["load:", "truncated", "the header announces"],
    ),
    _e(
        "load an export cut inside its header",
        lambda: jexport.load(_damaged(lambda d: d[:20])),
        ValueError,
        ["load:", "truncated", "20 bytes"],
    ),
    _e(
        "load a damaged export",
        lambda: jexport.load(_damaged(_flip_last)),
        ValueError,
        ["load:", "damaged", "checksum"],
    ),
    _e(
        "load an export of a newer format",
        lambda: jexport.load(_damaged(_newer)),
        ValueError,
        ["load:", f"format version {jexport.VERSION + 1}", "newer"],
    ),
    _e(
        "loaded model given the wrong shape",
        lambda: jexport.load(_saved())(np.zeros((3, 8, 8), np.float32)),
        ValueError,
        ["inputs must have shape", "(batch, 8, 8, 1)", "(3, 8, 8)"],
    ),
    _e(
        "loaded model given uint8 pixels",
        lambda: jexport.load(_saved())(np.zeros((3, 8, 8, 1), np.uint8)),
        ValueError,
        ["inputs must be float32", "uint8", "scale"],
    ),
    _e(
        "fixed-batch model given another batch size",
        lambda: jexport.load(_saved(4))(np.zeros((5, 8, 8, 1), np.float32)),
        ValueError,
        ["inputs must have shape", "(4, 8, 8, 1)", "(5, 8, 8, 1)"],
    ),
    # jaxnets export
    _c(
        "export a folder that holds no run",
        lambda: _export_cmd(_folder(), "--out", os.path.join(_folder(), "m.jaxexport")),
        ["jaxnets export: error: argument RUN", "no config.json"],
    ),
    _c(
        "export a missing folder",
        lambda: _export_cmd("no/such/run", "--out", os.path.join(_folder(), "m.jaxexport")),
        ["argument RUN", "no folder", "'no/such/run'"],
    ),
    _c(
        "export without --out",
        lambda: _export_cmd(_finished_run()),
        ["required", "--out"],
    ),
    _c(
        "export --out into a missing folder",
        lambda: _export_cmd(_finished_run(), "--out", os.path.join(_folder(), "no", "m")),
        ["argument --out", "no folder", "create it first"],
    ),
    _c(
        "export --out a folder",
        lambda: _export_cmd(_finished_run(), "--out", _folder()),
        ["argument --out", "is a folder"],
    ),
    _c(
        "export --batch 0",
        lambda: _export_cmd(_finished_run(), "--out", "m", "--batch", "0"),
        ["argument --batch", "'dynamic'", "'0'"],
    ),
    _c(
        "export --batch any",
        lambda: _export_cmd(_finished_run(), "--out", "m", "--batch", "any"),
        ["argument --batch", "'any'"],
    ),
    _c(
        "export --precision float16",
        lambda: _export_cmd(_finished_run(), "--out", "m", "--precision", "float16"),
        ["argument --precision", "'float16'", "bfloat16"],
    ),
    _c(
        "export --checkpoint of a missing file (nothing lost)",
        lambda: _export_over(["--checkpoint", "nowhere.jnc"]),
        ["argument --checkpoint", "'nowhere.jnc'"],
    ),
    _c(
        "export with every checkpoint damaged (nothing lost)",
        lambda: _export_over([], code=1, damage=_damage_checkpoints),
        ["jaxnets export: error: cannot restore --checkpoint best"],
    ),
    # jaxnets predict
    _c(
        "predict a missing export",
        lambda: _predict(os.path.join(_folder(), "m.jaxexport"), _png()),
        ["argument MODEL", "no file", "m.jaxexport"],
    ),
    _c(
        "predict with a file that is not an export",
        lambda: _predict(_text_file(), _png()),
        ["argument MODEL", "not a jaxnets export"],
    ),
    _c(
        "predict with a truncated export",
        lambda: _predict(_damaged(lambda d: d[:-100]), _png()),
        ["argument MODEL", "truncated"],
    ),
    _c(
        "predict images with an export whose inputs are not images",
        lambda: _predict(_xor_export(), _png()),
        ["argument MODEL", "(batch, 2)", "not images"],
    ),
    _c(
        "predict a missing image",
        lambda: _predict(_digits_export(), os.path.join(_folder(), "seven.png")),
        ["argument IMAGES", "no file or folder", "seven.png"],
    ),
    _c(
        "predict a folder without images",
        lambda: _predict(_digits_export(), os.path.dirname(_text_file())),
        ["argument IMAGES", "holds no image", ".png"],
    ),
    _c(
        "predict a text file named .png",
        lambda: _predict(_digits_export(), _text_file("fake.png")),
        ["argument IMAGES", "cannot read", "fake.png"],
    ),
    _c(
        "predict --top 11 of 10 classes",
        lambda: _predict(_digits_export(), _png(), "--top", "11"),
        ["argument --top", "11", "10 classes"],
    ),
    _c(
        "predict --top 0",
        lambda: _predict(_digits_export(), _png(), "--top", "0"),
        ["argument --top", "'0'"],
    ),
    _c("predict without images", lambda: _predict(_digits_export()), ["required", "IMAGES"]),
]
