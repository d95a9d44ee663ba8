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
