"""Every Python block of docs/data.md runs, in order, and prints what the page says."""

import os
import re

import pytest

pytest.importorskip("grain", reason="grain is in jaxnets' dependencies")

DOC = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "data.md")


def test_python_blocks_run_and_print_what_the_page_says(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with open(DOC) as f:
        text = f.read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 4
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/data.md block {i}", "exec"), namespace)
        printed = capsys.readouterr().out.strip()
        promised = re.findall(r"#\s*(.+)$", block.strip().splitlines()[-1])[0].strip()
        assert printed == promised, f"block {i} printed {printed!r}, the page says {promised!r}"
