"""``jaxnets summary``: print a model's layer table (shapes only; nothing is computed)."""

from __future__ import annotations

import argparse

from jaxnets.cli.errors import UsageError, option_error
from jaxnets.cli.options import check_data_dir
from jaxnets.cli.registry import build_model, model_error


def cmd_summary(args: argparse.Namespace) -> int:
    """Print the summary table of ``--model`` on ``--input-shape`` or ``--dataset``'s inputs.

    Args:
      args: the options of ``jaxnets summary`` (only those typed).

    Returns:
      The exit status, 0.

    Raises:
      UsageError: for a missing ``--model``, neither or both of ``--input-shape`` and
        ``--dataset``, options that do nothing with the one given, or a shape the model
        does not take.
    """
    from jaxnets.cli.parser import SUMMARY_DEFAULTS

    typed = vars(args)
    o = {**SUMMARY_DEFAULTS, **typed}
    if o.get("model") is None:
        raise UsageError("the following arguments are required: --model")
    if o["input_shape"] is not None and o["dataset"] is not None:
        raise option_error("--input-shape", "conflicts with --dataset; give one of them")
    if o["input_shape"] is not None:
        for name in ("data_dir", "resize"):
            if name in typed:
                option = "--" + name.replace("_", "-")
                raise option_error(option, "does nothing with --input-shape; it needs --dataset")
        model = build_model(o["model"], o["num_classes"], o["model_arg"])
        shape = tuple(o["input_shape"])
        where = "--input-shape"
    elif o["dataset"] is not None:
        if "num_classes" in typed:
            raise option_error(
                "--num-classes",
                f"does nothing with --dataset: {o['dataset']}'s labels give the classes",
            )
        check_data_dir(o["dataset"], o["data_dir"])
        from jaxnets.cli.prepare import prepare

        config = {**o, "val_split": 0, "seed": 0}
        prepared = prepare(config, val_split_given=False)
        model, shape = prepared.model, tuple(prepared.train.inputs.shape[1:])
        where = "--dataset"
    else:
        raise UsageError("give --input-shape H,W,C or --dataset NAME")
    problem = model_error(model, (o["batch_size"], *shape))
    if problem is not None:
        raise option_error(where, f"{o['model']} does not take inputs of shape {shape}: {problem}")

    from jaxnets.summary import summary

    summary(model, (o["batch_size"], *shape))
    return 0
