"""A seeded split of a data set into a training part and a validation part.

Example:
    >>> import numpy as np, jaxnets as jn
    >>> from jaxnets.data.split import validation_split
    >>> data = jn.data.ArrayDataset(np.arange(10.0)[:, None], np.arange(10))
    >>> train, val = validation_split(data, 0.2, seed=0)
    >>> len(train), len(val)
    (8, 2)
    >>> sorted(train.labels.tolist() + val.labels.tolist()) == list(range(10))
    True
"""

from __future__ import annotations

import numpy as np

from jaxnets.core.arguments import count, number
from jaxnets.data.dataset import ArrayDataset

#: Mixed into the seed so the split's draw differs from the epochs' shuffles
#: (:func:`jaxnets.data.epoch_order` seeds with ``[seed, epoch]``).
_STREAM = 0x76616C  # "val"


def validation_split(
    data: ArrayDataset, fraction: float, *, seed: int = 0
) -> tuple[ArrayDataset, ArrayDataset]:
    """Hold out a random ``fraction`` of ``data`` for validation, drawn with ``seed``.

    ``round(fraction * len(data))`` examples go to the validation part, the rest to the
    training part; both keep the examples in their original order. The same
    ``(data, fraction, seed)`` always gives the same split.

    Args:
      data: the examples (an :class:`ArrayDataset`).
      fraction: the share held out, strictly between 0 and 1; it must leave at least
        one example in each part.
      seed: the seed of the draw, an int >= 0.

    Returns:
      ``(train, val)``, two :class:`ArrayDataset`.

    Raises:
      TypeError: ``data`` is not an ArrayDataset, or ``fraction`` / ``seed`` are not
        numbers.
      ValueError: ``fraction`` is not in (0, 1) or leaves a part empty.
    """
    where = "validation_split"
    if not isinstance(data, ArrayDataset):
        raise TypeError(
            f"{where}: data must be an ArrayDataset(inputs, labels), got a {type(data).__name__}"
        )
    data.check()
    share = number(where, "fraction", fraction, low=0, high=1, low_open=True, high_open=True)
    seed = count(where, "seed", seed, minimum=0)
    n = len(data)
    n_val = round(share * n)
    if n_val < 1 or n_val >= n:
        raise ValueError(
            f"{where}: fraction {share:g} of {n} examples holds out {n_val}; each part "
            f"needs at least one example"
        )
    order = np.random.default_rng([_STREAM, seed]).permutation(n)
    return data.take(np.sort(order[n_val:])), data.take(np.sort(order[:n_val]))
