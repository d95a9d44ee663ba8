"""ResNet-20 on CIFAR-10 from a local folder, with the paper's augmentation and schedule.

Usage:
    python examples/resnet20_cifar10.py --data-dir ~/data/cifar-10-batches-bin
    python examples/resnet20_cifar10.py --synthetic      # a fast smoke run on random data

The data are the CIFAR-10 "binary version" (``cifar-10-binary.tar.gz``, extracted);
nothing is downloaded. Training follows He et al. (2016, section 4.2): 4-pixel padding
with random 32x32 crops and horizontal flips (an ``Augment`` layer in front of the
network, so it runs on the device inside the jitted step), per-channel normalisation,
SGD with momentum 0.9, weight decay 1e-4 on the kernels, batch 128, learning rate 0.1
divided by 10 at 50% and 75% of training (the paper: 64k iterations, about 164 epochs,
8.75% test error). Prints the test accuracy as its last line.
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np
import optax

import jaxnets as jn
from jaxnets.plots import plot_history


def synthetic(n_train: int, n_test: int, seed: int = 0):
    """Random 32x32x3 images with labels that depend on them (the mean of a channel
    patch), so a short run can be checked end to end without the real files."""
    rng = np.random.default_rng(seed)

    def make(n):
        x = rng.uniform(0.0, 1.0, (n, 32, 32, 3)).astype(np.float32)
        y = (x[:, :8, :8, 0].mean(axis=(1, 2)) * 10 % 10).astype(np.int32)
        return jn.data.ArrayDataset(x, y)

    return make(n_train), make(n_test)


def normalise(train, test):
    """Per-channel standardisation with the training set's statistics."""
    mean = train.inputs.mean(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)
    std = train.inputs.std(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)
    return tuple(jn.data.ArrayDataset((d.inputs - mean) / std, d.labels) for d in (train, test))


def kernels_only(params):
    """Weight decay on convolution and dense kernels, not on biases or BatchNorm."""
    return jax.tree_util.tree_map_with_path(lambda path, _: path[-1].key == "kernel", params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="folder with data_batch_1.bin .. test_batch.bin")
    parser.add_argument("--synthetic", action="store_true", help="random data, a few steps")
    parser.add_argument("--epochs", type=int, default=None, help="default 164 (1 synthetic)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 128 (32)")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="runs/resnet20_cifar10")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.synthetic == (args.data_dir is not None):
        parser.error("give exactly one of --data-dir DIR and --synthetic")

    if args.synthetic:
        train, test = synthetic(128, 64)
        epochs, batch_size = args.epochs or 1, args.batch_size or 32
    else:
        train, test = jn.data.load_cifar10(os.path.expanduser(args.data_dir))
        epochs, batch_size = args.epochs or 164, args.batch_size or 128
    train, test = normalise(train, test)

    model = jn.serial(
        ("augment", jn.data.Augment(crop_padding=4, flip=True)),
        ("resnet20", jn.models.resnet20(num_classes=10)),
    )
    jn.summary(model, (batch_size, 32, 32, 3))
    steps = epochs * jn.data.steps_per_epoch(train, batch_size)
    schedule = optax.piecewise_constant_schedule(
        args.lr, {int(steps * 0.5): 0.1, int(steps * 0.75): 0.1}
    )
    optimizer = optax.chain(
        optax.masked(optax.add_decayed_weights(1e-4), kernels_only),
        optax.sgd(schedule, momentum=0.9),
    )
    result = jn.fit(
        model,
        train,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        val_data=test,
        seed=args.seed,
        progress=not args.no_progress,
    )
    path = plot_history(result.history, os.path.join(args.out_dir, "curves.png"))
    print(f"trained {epochs} epochs of {steps // max(epochs, 1)} steps; curves: {path}")
    print(f"test_accuracy={result.history['val_accuracy'][-1]:.4f}")


if __name__ == "__main__":
    main()
