"""Small synthetic data sets for first examples: XOR and two spirals."""

from __future__ import annotations

import numpy as np

from jaxnets.data.dataset import ArrayDataset


def xor(repeat: int = 1) -> ArrayDataset:
    """The four XOR points (label = x1 xor x2), each repeated ``repeat`` times.

    Args:
      repeat: how many copies of the four points.

    Returns:
      An :class:`ArrayDataset` of ``4 * repeat`` float32 points ``(x1, x2)`` in {0, 1}
      and int32 labels, the four points in turn.

    Example:
        >>> xor().labels.tolist()
        [0, 1, 1, 0]
    """
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0], np.int32)
    return ArrayDataset(np.tile(x, (repeat, 1)), np.tile(y, repeat))


def two_spirals(
    n: int = 400, noise: float = 0.1, turns: float = 1.5, seed: int = 0
) -> ArrayDataset:
    """Two interleaved spirals in the plane, ``n`` points each half, labels 0 and 1.

    Args:
      n: points per spiral.
      noise: the standard deviation of the Gaussian noise on each coordinate, in units of
        the gap between neighbouring arms (the spirals reach radius 1).
      turns: how many turns each spiral makes.
      seed: the seed of the points, the noise and the order.

    Returns:
      An :class:`ArrayDataset` of ``2 * n`` float32 points ``(x, y)`` and int32 labels,
      shuffled.

    Example:
        >>> two_spirals(100).inputs.shape
        (200, 2)
    """
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.0, 1.0, n)) * turns * 2 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (turns * 2 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0.0, noise / (turns * 2), (2 * n, 2))
    y = np.concatenate([np.zeros(n, np.int32), np.ones(n, np.int32)])
    order = rng.permutation(2 * n)
    return ArrayDataset(x[order].astype(np.float32), y[order])
