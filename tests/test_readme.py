"""The README's first example runs as written and prints what its comments say."""

import os
import re

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def test_sixty_seconds_example_runs(capsys):
    with open(README) as f:
        block = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)[0]
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "(256, 10)" in out and "(32, 10)" in out and "Total params: 85,002" in out
    accuracy = float(re.search(r"^(0\.\d+)$", out, flags=re.M).group(1))
    assert accuracy > 0.9


def test_every_python_block_runs_in_order(capsys):
    """The later blocks continue the first one's session (``train``, ``test``, ``model``)."""
    with open(README) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md python block {i}", "exec"), namespace)
    assert "['discriminator', 'generator']" in capsys.readouterr().out
