"""Data: in-memory data sets, batching, and the built-in data sets."""

from jaxnets.data.dataset import (
    ArrayDataset,
    batches,
    epoch_order,
    eval_batches,
    prefetch_to_device,
    steps_per_epoch,
)
from jaxnets.data.digits import load_digits
from jaxnets.data.synthetic import two_spirals, xor

__all__ = [
    "ArrayDataset",
    "batches",
    "epoch_order",
    "eval_batches",
    "load_digits",
    "prefetch_to_device",
    "steps_per_epoch",
    "two_spirals",
    "xor",
]
