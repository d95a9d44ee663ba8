"""Run the Python blocks of docs/parallel.md in order, in one namespace; print JSON.

Blocks that join a multi-process run (``initialize(``) are skipped: they need several
processes. Run with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "parallel.md"


def main() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    namespace: dict = {}
    ran = 0
    for i, block in enumerate(blocks):
        if "initialize(" in block:
            continue
        exec(compile(block, f"docs/parallel.md python block {i}", "exec"), namespace)
        ran += 1
    kernel = namespace["kernel"]
    print(
        json.dumps(
            {
                "blocks": len(blocks),
                "ran": ran,
                "kernel_spec": str(kernel.sharding.spec),
                "kernel_shard_shape": list(kernel.sharding.shard_shape(kernel.shape)),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
