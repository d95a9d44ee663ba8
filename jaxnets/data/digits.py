"""scikit-learn's bundled 8x8 digits, split as in scikit-learn's classification example."""

from __future__ import annotations

import numpy as np

from jaxnets.data.dataset import ArrayDataset


def load_digits() -> tuple[ArrayDataset, ArrayDataset]:
    """The 1,797 digits as ``(train, test)``: the first half trains (898 images), the
    second half tests (899), no shuffle, as ``train_test_split(test_size=0.5,
    shuffle=False)`` in scikit-learn's example. Images are ``(N, 8, 8, 1)`` float32 in
    [0, 1], labels int32 in 0..9. The data ships with scikit-learn: nothing is downloaded.

    Returns:
      ``(train, test)``, two :class:`ArrayDataset`.

    Example:
        >>> train, test = load_digits()
        >>> train.inputs.shape, len(test)
        ((898, 8, 8, 1), 899)
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = (bunch.images / 16.0).astype(np.float32)[..., None]
    labels = bunch.target.astype(np.int32)
    n_test = len(images) - len(images) // 2
    split = len(images) - n_test
    return ArrayDataset(images[:split], labels[:split]), ArrayDataset(
        images[split:], labels[split:]
    )
