"""Pictures of a training run, written as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence


def plot_history(history: Mapping[str, Sequence[float]], path: str) -> str:
    """Plot loss and accuracy curves (training and validation) per epoch to ``path``.

    The file is written to a temporary name and renamed, so a reader never sees half a
    PNG. Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [m for m in ("loss", "accuracy") if m in history or f"val_{m}" in history]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.6))
    axes = axes if hasattr(axes, "__len__") else [axes]
    for ax, metric in zip(axes, panels, strict=False):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if key in history:
                values = list(history[key])
                ax.plot(range(1, len(values) + 1), values, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path
