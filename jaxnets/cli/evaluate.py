"""``jaxnets evaluate``: restore a trained run's checkpoint and evaluate it on one split.

The split is the run's validation data by default (the one that chose ``best.jnc``:
``--val-split`` of the training data, drawn again with the run's seed) or, with
``--split test``, the test set; the output says which.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from jaxnets.cli.common import build_optimizer, format_metrics, use_cache, write_plots
from jaxnets.cli.errors import RunError, option_error
from jaxnets.cli.options import TRAIN_DEFAULTS, check_data_dir, checkpoint_steps, read_run_config
from jaxnets.cli.prepare import prepare


def _run_config(args: argparse.Namespace) -> dict[str, Any]:
    """The run's config with this command's output and cache options."""
    run = os.path.abspath(args.run)
    if not os.path.isdir(run):
        raise option_error("--run", f"no folder {args.run!r}; give the --out of a jaxnets train")
    saved = read_run_config(run, "--run")
    config = {**TRAIN_DEFAULTS, **{k: v for k, v in saved.items() if k in TRAIN_DEFAULTS}}
    if args.data_dir is not None:
        check_data_dir(config["dataset"], args.data_dir)
        config["data_dir"] = args.data_dir
    for key in ("quiet", "no_progress", "compile_cache", "no_compile_cache"):
        config[key] = getattr(args, key)
    if config["compile_cache"] is not None and config["no_compile_cache"]:
        raise option_error("--compile-cache", "conflicts with --no-compile-cache; give one")
    config["out"] = run
    return config


def _checkpoint(run: str, choice: str) -> tuple[str, str]:
    """``(path, how it was chosen)`` of ``--checkpoint`` best, latest or a file."""
    folder = os.path.join(run, "checkpoints")
    steps = checkpoint_steps(folder)
    latest = os.path.join(folder, f"ckpt-{steps[-1]:08d}.jnc") if steps else None
    if choice == "best":
        best = os.path.join(folder, "best.jnc")
        if os.path.isfile(best):
            return best, "best"
        if latest is not None:
            return latest, "latest (the run has no best.jnc)"
    elif choice == "latest":
        if latest is not None:
            return latest, "latest"
    elif os.path.isfile(choice):
        return os.path.abspath(choice), "given"
    else:
        raise option_error(
            "--checkpoint", f"no file {choice!r}; give best, latest or a checkpoint file"
        )
    raise option_error("--checkpoint", f"{choice}: the run holds no checkpoint in {folder}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print a run's metrics on one split and write its confusion matrix and predictions
    to RUN/plots (``val_confusion.png`` ... for the validation split).

    Args:
      args: the options of ``jaxnets evaluate``.

    Returns:
      The exit status, 0.

    Raises:
      UsageError: for a folder that holds no run, a missing checkpoint or a split the
        run does not have.
      RunError: for a damaged checkpoint or one that does not fit the run's model.
    """
    from jaxnets.data import steps_per_epoch
    from jaxnets.train import evaluate, make_eval_step
    from jaxnets.train.checkpoint import restore_checkpoint
    from jaxnets.train.state import create_train_state

    config = _run_config(args)
    path, how = _checkpoint(config["out"], args.checkpoint)
    use_cache(config)
    prepared = prepare(config, val_split_given=False)
    if args.split == "val":
        if prepared.val is None:
            raise option_error(
                "--split", "val: the run kept no validation data (--val-split 0); give --split test"
            )
        data = prepared.val
        source = prepared.validation
        where = (
            f"the validation split ({len(data)} examples held out of the training data by "
            f"--val-split {source['val_split']:g}, seed {config['seed']})"
            if source["source"] == "val_split"
            else f"the validation split ({len(data)} examples of the data set's own)"
        )
    else:
        data = prepared.test
        where = f"the test split ({len(data)} examples)"
    optimizer = build_optimizer(config, steps_per_epoch(prepared.train, config["batch_size"]))
    spec = (config["batch_size"], *prepared.train.inputs.shape[1:])
    template = create_train_state(prepared.model, optimizer, spec, seed=config["seed"])
    try:
        ts, meta = restore_checkpoint(path, template)
    except (ValueError, OSError) as e:  # CheckpointError is a ValueError
        raise RunError(f"cannot restore --checkpoint {args.checkpoint}: {e}") from e
    eval_step = make_eval_step(
        prepared.model, "softmax_cross_entropy", precision=config["precision"]
    )
    metrics = evaluate(eval_step, ts, data)
    prefix = "val_" if args.split == "val" else ""
    written = write_plots(
        config["out"], prepared.model, ts, data, config["precision"], prefix=prefix, filters=False
    )
    if not args.quiet:
        print(
            f"{os.path.basename(path)} ({how}; step {meta['step']}, epoch {meta.get('epoch')}) "
            f"on {where}: {format_metrics(metrics, args.split)}"
        )
        print("plots: " + ", ".join(written.values()))
    return 0
