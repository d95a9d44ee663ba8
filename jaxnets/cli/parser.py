"""The argument parser of the ``jaxnets`` command and its option groups.

Every error it finds is one line, ``jaxnets <command>: error: ...``, with exit status 2.
``train`` and ``summary`` record only the options typed (their default is
``argparse.SUPPRESS``), so a resumed run can tell a typed option from a default; the
defaults are :data:`jaxnets.cli.options.TRAIN_DEFAULTS` and :data:`SUMMARY_DEFAULTS`.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any, NoReturn

from jaxnets.cli import types
from jaxnets.cli.options import RESUME_MAY_CHANGE, TRAIN_DEFAULTS, flag_name
from jaxnets.cli.registry import DATASETS

#: ``jaxnets summary``'s defaults.
SUMMARY_DEFAULTS: dict[str, Any] = {
    "model_arg": [],
    "input_shape": None,
    "num_classes": 10,
    "dataset": None,
    "data_dir": None,
    "resize": "auto",
    "batch_size": 1,
    "quiet": False,
}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class Formatter(argparse.HelpFormatter):
    """argparse's help layout, never breaking an option such as ``--no-compile-cache``
    at a hyphen."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def versions() -> dict[str, str]:
    """The versions of jaxnets, jax and jaxlib that run.

    Returns:
      ``{"jaxnets": ..., "jax": ..., "jaxlib": ...}``.
    """
    from importlib.metadata import PackageNotFoundError, version

    import jax

    import jaxnets

    try:
        jaxlib = version("jaxlib")
    except PackageNotFoundError:  # pragma: no cover - jax cannot run without it
        jaxlib = "unknown"
    return {"jaxnets": jaxnets.__version__, "jax": jax.__version__, "jaxlib": jaxlib}


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """``--model`` and ``--model-arg``."""
    p.add_argument(
        "--model",
        help="a model of jaxnets.models by name (mlp, perceptron, lenet5, resnet20, vgg16, "
        "resnet50, ...); it gets num_classes= from the data (required)",
    )
    p.add_argument(
        "--model-arg",
        action="append",
        metavar="NAME=VALUE",
        help="a keyword argument of the model constructor, as a Python literal "
        "(e.g. hidden=(64,64) or dropout=0.2) or a bare word (activation=relu); repeat for "
        "several",
    )


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """``--dataset``, ``--data-dir`` and ``--resize``."""
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        help="digits (scikit-learn's, built in), xor, spirals (synthetic), or mnist, "
        "fashion_mnist, cifar10 read from --data-dir",
    )
    p.add_argument(
        "--data-dir", help="folder with the MNIST IDX or CIFAR-10 batch files (those only)"
    )
    p.add_argument(
        "--resize",
        type=types.resize,
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

    may_change = ", ".join(flag_name(k) for k in RESUME_MAY_CHANGE if k != "out")
    d = TRAIN_DEFAULTS
    train = commands.add_parser(
        "train",
        help="train a model of the zoo on a data set",
        formatter_class=Formatter,
        description="Train a model and write config, metrics, plots and checkpoints to "
        "--out. Validation (val_*: the best checkpoint, early stopping) uses a seeded "
        "--val-split of the training data; the test set is evaluated once, at the end "
        "(test_*).",
        argument_default=argparse.SUPPRESS,
    )
    _add_model_options(train)
    _add_data_options(train)
    add = train.add_argument
    add(
        "--val-split",
        type=types.fraction,
        metavar="FRACTION",
        help=f"share of the training data held out for validation, drawn with --seed "
        f"(default {d['val_split']}); 0 keeps none (best.jnc then follows the training loss)",
    )
    add("--epochs", type=types.positive_int, help=f"epochs in all (default {d['epochs']})")
    add("--batch-size", type=types.positive_int, help=f"batch size (default {d['batch_size']})")
    add("--optimizer", choices=OPTIMIZERS, help=f"optimizer (default {d['optimizer']})")
    add("--lr", type=types.positive_float, help=f"peak learning rate (default {d['lr']:g})")
    add(
        "--schedule",
        choices=SCHEDULES,
        help=f"learning-rate schedule over the run (default {d['schedule']})",
    )
    add(
        "--warmup-epochs",
        type=types.natural_float,
        help="warm-up of --schedule warmup_cosine, in epochs (default 0)",
    )
    add(
        "--weight-decay",
        type=types.natural_float,
        help="weight decay on kernels only, not biases or norm scales (adamw: decoupled)",
    )
    add(
        "--freeze",
        action="append",
        metavar="GLOB",
        help="freeze the parameters whose path matches GLOB (e.g. 'conv1/*'); repeatable",
    )
    add("--clip-norm", type=types.positive_float, help="clip gradients to this global norm")
    add(
        "--accumulate",
        type=types.positive_int,
        help="accumulate gradients over N batches (default 1)",
    )
    add(
        "--precision",
        choices=PRECISIONS,
        help="compute dtype; parameters stay float32 (default float32)",
    )
    add(
        "--loss-scale",
        type=types.positive_float,
        help="loss scale of --precision float16 (default 32768)",
    )
    add("--seed", type=types.natural_int, help="random seed (default 0)")
    add("--out", help=f"output folder (default {d['out']})")
    add(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest checkpoint, up to --epochs; the "
        "other options come from its config.json, and only these may change: "
        f"{may_change}",
    )
    add("--keep", type=types.positive_int, help="step checkpoints to keep (default 3)")
    add(
        "--checkpoint-every",
        type=types.positive_int,
        help="also checkpoint every N steps within epochs",
    )
    add(
        "--early-stopping",
        type=types.positive_int,
        metavar="PATIENCE",
        help="stop when val_loss has not improved for PATIENCE epochs",
    )
    add("--tensorboard", action="store_true", help="write TensorBoard logs to OUT/tensorboard")
    _add_common(train)


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    """The ``evaluate`` command and its options."""
    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a trained run on its validation or test split",
        formatter_class=Formatter,
        description="Restore a run's checkpoint, print its metrics on one split (the "
        "validation split by default) and write the confusion matrix and a grid of "
        "predictions to RUN/plots.",
    )
    evaluate.add_argument("--run", required=True, help="the --out folder of jaxnets train")
    evaluate.add_argument(
        "--checkpoint",
        default="best",
        help="'best' (default), 'latest', or the path of a checkpoint file",
    )
    evaluate.add_argument(
        "--split",
        choices=("val", "test"),
        default="val",
        help="'val' (default): the run's validation data, as training saw it; 'test': the "
        "test set (report it once, for the model you have chosen)",
    )
    evaluate.add_argument("--data-dir", help="override the run's --data-dir")
    _add_common(evaluate)


def _add_summary(commands: argparse._SubParsersAction) -> None:
    """The ``summary`` command and its options."""
    summary = commands.add_parser(
        "summary",
        help="print a model's layers, output shapes and parameter counts",
        formatter_class=Formatter,
        description="Print the summary table of a model (shapes only; nothing is computed).",
        argument_default=argparse.SUPPRESS,
    )
    _add_model_options(summary)
    summary.add_argument(
        "--input-shape",
        type=types.shape,
        help="input shape without the batch, e.g. 28,28,1 (or --dataset)",
    )
    summary.add_argument(
        "--num-classes",
        type=types.positive_int,
        help="classes, with --input-shape (default 10)",
    )
    _add_data_options(summary)
    summary.add_argument(
        "--batch-size", type=types.positive_int, help="batch size shown (default 1)"
    )
    summary.add_argument("--quiet", action="store_true", help="print no resize notice")


def _add_demo(commands: argparse._SubParsersAction) -> None:
    """The ``demo`` command and its options."""
    demo = commands.add_parser(
        "demo",
        help="train the default network on the digits data and print test accuracy",
        formatter_class=Formatter,
    )
    demo.add_argument(
        "--epochs",
        type=types.positive_int,
        default=None,
        help="training epochs (default: the demo's, 40)",
    )
    demo.add_argument(
        "--batch-size", type=types.positive_int, default=32, help="batch size (default 32)"
    )
    demo.add_argument("--seed", type=types.natural_int, default=0, help="random seed (default 0)")
    demo.add_argument("--out-dir", default="runs/demo", help="folder for the curves PNG")
    demo.add_argument("--no-augment", action="store_true", help="train without random shifts")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _add_export(commands: argparse._SubParsersAction) -> None:
    """The ``export`` command and its options."""
    from jaxnets.cli.export_command import batch_option

    export = commands.add_parser(
        "export",
        help="export a trained run for inference (jax.export, one file)",
        formatter_class=Formatter,
        description="Rebuild a run's model from its config.json, restore its checkpoint and "
        "write its inference, parameters included, as one jax.export file that jaxnets "
        "predict (or jaxnets.export.load) runs without the model's code.",
    )
    export.add_argument("run", metavar="RUN", help="the --out folder of jaxnets train")
    export.add_argument("--out", required=True, help="the file to write, e.g. model.jaxexport")
    export.add_argument(
        "--checkpoint",
        default="best",
        help="'best' (default), 'latest', or the path of a checkpoint file",
    )
    export.add_argument(
        "--precision",
        choices=("float32", "bfloat16"),
        default="float32",
        help="compute dtype of the export (default float32); outputs are float32",
    )
    export.add_argument(
        "--batch",
        type=batch_option,
        default="dynamic",
        help="'dynamic' (default: any batch size) or the one batch size N it takes",
    )
    export.add_argument("--quiet", action="store_true", help="print only errors")


def _add_predict(commands: argparse._SubParsersAction) -> None:
    """The ``predict`` command and its options."""
    predict = commands.add_parser(
        "predict",
        help="classify image files with an export of jaxnets export",
        formatter_class=Formatter,
        description="Print one line per image: its path, then its top classes with their "
        "softmax scores. Images are converted, resized and scaled as the run's were.",
    )
    predict.add_argument("model", metavar="MODEL", help="a file of jaxnets export")
    predict.add_argument(
        "images", metavar="IMAGES", nargs="+", help="image files (PNG, JPEG) or folders of them"
    )
    predict.add_argument(
        "--top", type=types.positive_int, default=1, help="classes shown per image (default 1)"
    )
    predict.add_argument(
        "--batch-size", type=types.positive_int, default=64, help="images per call (default 64)"
    )


def _add_pack(commands: argparse._SubParsersAction) -> None:
    """The ``pack`` command and its options."""
    pack = commands.add_parser(
        "pack",
        help="write an image folder or a data set as a packed record file",
        formatter_class=Formatter,
        description="Write the images of --folder (one sub-folder a class) or a split of "
        "--dataset as one ArrayRecord file of uint8 examples and int32 labels, with its "
        "description in OUT.json: what jaxnets.data.RecordFile and Pipeline read.",
        argument_default=argparse.SUPPRESS,
    )
    pack.add_argument("--out", required=True, help="the file to write (it must not exist)")
    pack.add_argument("--folder", help="a folder of class folders of images")
    pack.add_argument("--size", type=types.shape, help="HEIGHT,WIDTH of every image (--folder)")
    pack.add_argument(
        "--channels", type=int, choices=(1, 3), help="1 (grey) or 3 (RGB, default) (--folder)"
    )
    pack.add_argument("--dataset", choices=DATASETS, help="a built-in data set instead")
    pack.add_argument("--data-dir", help="the folder of --dataset's files (mnist, cifar10)")
    pack.add_argument(
        "--split", choices=("train", "test"), help="which part of --dataset (default train)"
    )
    pack.add_argument("--quiet", action="store_true", help="print only errors")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``jaxnets`` command.

    Returns:
      A parser with ``--version`` and the subcommands ``train``, ``evaluate``,
      ``summary``, ``demo``, ``export``, ``predict`` and ``pack``; the chosen one is in
      ``command``.
    """
    parser = Parser(
        prog="jaxnets",
        description="jaxnets: functional neural networks for JAX.",
        formatter_class=Formatter,
    )
    v = versions()
    parser.add_argument(
        "--version",
        action="version",
        version=f"jaxnets {v['jaxnets']} (jax {v['jax']}, jaxlib {v['jaxlib']})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train(commands)
    _add_evaluate(commands)
    _add_summary(commands)
    _add_demo(commands)
    _add_export(commands)
    _add_predict(commands)
    _add_pack(commands)
    return parser
