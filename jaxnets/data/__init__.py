"""Data: in-memory data sets, batching, sources of batches, and the built-in data sets."""

from jaxnets.data.augment import (
    Augment,
    augmentation,
    random_brightness,
    random_contrast,
    random_crop,
    random_flip,
    random_translate,
)
from jaxnets.data.dataset import (
    ArrayDataset,
    batches,
    epoch_order,
    eval_batches,
    prefetch_to_device,
    steps_per_epoch,
)
from jaxnets.data.digits import load_digits
from jaxnets.data.image_folder import ImageFolder, decode_image, write_image_folder
from jaxnets.data.pipeline import Pipeline, scale_images
from jaxnets.data.readers import (
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
    read_cifar10_batch,
    read_idx,
)
from jaxnets.data.records import RecordFile, write_records
from jaxnets.data.sources import Source, as_source
from jaxnets.data.split import validation_split
from jaxnets.data.synthetic import two_spirals, xor
from jaxnets.data.text import (
    CharVocab,
    Windows,
    bigram_bits_per_char,
    load_text,
    split_text,
    stdlib_corpus,
    tbptt_windows,
)

__all__ = [
    "ArrayDataset",
    "Augment",
    "CharVocab",
    "ImageFolder",
    "Pipeline",
    "RecordFile",
    "Source",
    "Windows",
    "as_source",
    "augmentation",
    "batches",
    "bigram_bits_per_char",
    "decode_image",
    "epoch_order",
    "eval_batches",
    "load_cifar10",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_text",
    "prefetch_to_device",
    "random_brightness",
    "random_contrast",
    "random_crop",
    "random_flip",
    "random_translate",
    "read_cifar10_batch",
    "read_idx",
    "scale_images",
    "split_text",
    "stdlib_corpus",
    "steps_per_epoch",
    "tbptt_windows",
    "two_spirals",
    "validation_split",
    "write_image_folder",
    "write_records",
    "xor",
]
