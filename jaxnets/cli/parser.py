"""The argument parser of the ``jaxnets`` command and its option groups."""

from __future__ import annotations

import argparse

from jaxnets.cli.registry import DATASETS


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """``--model`` and ``--model-arg``."""
    p.add_argument(
        "--model",
        required=True,
        help="a model of jaxnets.models by name (mlp, perceptron, lenet5, resnet20, vgg16, "
        "resnet50, ...); it gets num_classes= from the data",
    )
    p.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a keyword argument of the model constructor, as a Python literal "
        "(e.g. hidden=(64,64) or dropout=0.2); repeat for several",
    )


def _add_data_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``--dataset`` (required unless ``required`` is False), ``--data-dir`` and ``--resize``."""
    p.add_argument(
        "--dataset",
        required=required,
        choices=DATASETS,
        help="digits (scikit-learn's, built in), xor, spirals (synthetic), or mnist, "
        "fashion_mnist, cifar10 read from --data-dir",
    )
    p.add_argument("--data-dir", help="folder with the MNIST IDX or CIFAR-10 batch files")
    p.add_argument(
        "--resize",
        default="auto",
        help="resize images to NxN (bilinear); 'auto' (default) resizes to 28 (grey) or "
        "32 (colour) only when the model cannot take the native size (e.g. lenet5 on the "
        "8x8 digits); 0 never resizes",
    )


def _add_common(p: argparse.ArgumentParser) -> None:
    """The output and compilation-cache options of ``train`` and ``evaluate``."""
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.add_argument(
        "--compile-cache",
        metavar="DIR",
        help="persistent compilation cache folder (default $JAXNETS_COMPILE_CACHE or "
        "~/.cache/jaxnets/xla)",
    )
    p.add_argument(
        "--no-compile-cache", action="store_true", help="do not use the compilation cache"
    )


def _add_train(commands: argparse._SubParsersAction) -> None:
    """The ``train`` command and its options."""
    from jaxnets.optim import OPTIMIZERS, SCHEDULES
    from jaxnets.train.precision import PRECISIONS

    train = commands.add_parser(
        "train",
        help="train a model of the zoo on a data set",
        description="Train a model and write metrics, plots and checkpoints to --out.",
    )
    _add_model_options(train)
    _add_data_options(train)
    train.add_argument("--epochs", type=int, default=10, help="epochs in all (default 10)")
    train.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    train.add_argument(
        "--optimizer", choices=OPTIMIZERS, default="adam", help="optimizer (default adam)"
    )
    train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (1e-3)")
    train.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="constant",
        help="learning-rate schedule over the run (default constant)",
    )
    train.add_argument(
        "--warmup-epochs", type=float, default=0.0, help="warm-up for warmup_cosine (epochs)"
    )
    train.add_argument(
        "--weight-decay",
        type=float,
        default=0.0,
        help="weight decay on kernels only, not biases or norm scales (adamw: decoupled)",
    )
    train.add_argument(
        "--freeze",
        action="append",
        default=[],
        metavar="GLOB",
        help="freeze the parameters whose path matches GLOB (e.g. 'conv1/*'); repeatable",
    )
    train.add_argument("--clip-norm", type=float, help="clip gradients to this global norm")
    train.add_argument(
        "--accumulate", type=int, default=1, help="accumulate gradients over N batches"
    )
    train.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="compute dtype; parameters stay float32 (default float32)",
    )
    train.add_argument("--loss-scale", type=float, help="loss scale (float16: 32768)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--out", default="runs/train", help="output folder (runs/train)")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest checkpoint, up to --epochs",
    )
    train.add_argument("--keep", type=int, default=3, help="checkpoints to keep (default 3)")
    train.add_argument(
        "--checkpoint-every", type=int, help="also checkpoint every N steps within epochs"
    )
    train.add_argument(
        "--early-stopping",
        type=int,
        metavar="PATIENCE",
        help="stop when val_loss has not improved for PATIENCE epochs",
    )
    train.add_argument(
        "--tensorboard", action="store_true", help="write TensorBoard logs to OUT/tensorboard"
    )
    _add_common(train)


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    """The ``evaluate`` command and its options."""
    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a trained run on its test set",
        description="Restore a run's checkpoint, print test metrics and write the confusion "
        "matrix and a grid of predictions to RUN/plots.",
    )
    evaluate.add_argument("--run", required=True, help="the --out folder of jaxnets train")
    evaluate.add_argument(
        "--checkpoint",
        default="best",
        help="'best' (default), 'latest', or the path of a checkpoint file",
    )
    evaluate.add_argument("--data-dir", help="override the run's --data-dir")
    _add_common(evaluate)


def _add_summary(commands: argparse._SubParsersAction) -> None:
    """The ``summary`` command and its options."""
    summary = commands.add_parser(
        "summary",
        help="print a model's layers, output shapes and parameter counts",
        description="Print the summary table of a model (shapes only; nothing is computed).",
    )
    _add_model_options(summary)
    summary.add_argument(
        "--input-shape",
        help="input shape without the batch, e.g. 28,28,1 (default: from --dataset)",
    )
    summary.add_argument(
        "--num-classes", type=int, default=10, help="classes, with --input-shape (default 10)"
    )
    _add_data_options(summary, required=False)
    summary.add_argument("--batch-size", type=int, default=1, help="batch size shown (1)")
    summary.add_argument("--quiet", action="store_true", help="print no resize notice")


def _add_demo(commands: argparse._SubParsersAction) -> None:
    """The ``demo`` command and its options."""
    demo = commands.add_parser(
        "demo", help="train the default network on the digits data and print test accuracy"
    )
    demo.add_argument(
        "--epochs", type=int, default=None, help="training epochs (default: the demo's, 40)"
    )
    demo.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--out-dir", default="runs/demo", help="folder for the curves PNG")
    demo.add_argument("--no-augment", action="store_true", help="train without random shifts")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``jaxnets`` command.

    Returns:
      A parser with the subcommands ``train``, ``evaluate``, ``summary`` and ``demo``;
      the chosen one is in ``command``.
    """
    parser = argparse.ArgumentParser(
        prog="jaxnets", description="jaxnets: functional neural networks for JAX."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train(commands)
    _add_evaluate(commands)
    _add_summary(commands)
    _add_demo(commands)
    return parser
