"""Every Python block of docs/training.md runs, in order; every `jaxnets` line of its shell
blocks runs through the command's ``main``."""

import os
import re
import shlex

import pytest

from jaxnets import cli
from jaxnets.train import cache

DOC = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "training.md")


def _blocks(kind):
    with open(DOC) as f:
        text = f.read()
    return re.findall(rf"```{kind}\n(.*?)```", text, flags=re.S)


def test_python_blocks_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    blocks = _blocks("python")
    assert len(blocks) >= 8
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"docs/training.md block {i}", "exec"), namespace)
        except Exception as e:  # pragma: no cover - the message names the block
            pytest.fail(f"block {i} failed: {type(e).__name__}: {e}\n{block}")
    out = capsys.readouterr().out
    assert "[56, 84, 112]" in out and "4 0 112" in out
    assert "'params/hidden_0/dense/bias' has shape (32,), the model expects (16,)" in out
    assert "truncated or padded" in out
    assert "the training loss became nan at step 3 " in out


def test_shell_lines_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    used = []
    monkeypatch.setattr(cache, "enable_compilation_cache", lambda path=None: used.append(path))
    lines = [
        line
        for block in _blocks("sh")
        for line in block.splitlines()
        if line.startswith("jaxnets ")
    ]
    assert len(lines) == 4
    for line in lines:
        assert cli.main(shlex.split(line)[1:]) == 0, line
    assert len(used) == 3  # train, train --resume, evaluate
    assert os.path.exists(tmp_path / "runs" / "lenet5" / "plots" / "filters.png")
    assert "Total params: 61,706" in capsys.readouterr().out
