"""``jaxnets export``: a run's checkpoint as one ``jax.export`` file for inference.

The model is rebuilt from the run's ``config.json`` (and its data set, which gives the
input shape and the classes), the checkpoint restored (``best.jnc`` by default), and
:func:`jaxnets.export.export` stages its inference with the parameters baked in. The file
records what ``jaxnets predict`` needs: the input shape and dtype, the class names of the
data set and the range images were scaled to. It is written to a temporary name and
renamed, so a failing command leaves ``--out`` as it was.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from jaxnets.cli.errors import RunError, option_error


def batch_option(text: str) -> str | int:
    """``--batch``: ``dynamic`` or a positive int.

    Args:
      text: the option's text.

    Returns:
      ``"dynamic"`` or the int.

    Example:
        >>> batch_option("dynamic"), batch_option("8")
        ('dynamic', 8)
    """
    if text == "dynamic":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 'dynamic' or a positive int, got {text!r}")
    return value


def _check_out(out: str) -> str:
    """``--out`` as an absolute path: a file (new or replaced) in a folder that exists."""
    path = os.path.abspath(out)
    if os.path.isdir(path):
        raise option_error("--out", f"{out!r} is a folder; give the path of the file to write")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise option_error("--out", f"{out!r}: no folder {folder!r}; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise option_error("--out", f"{out!r}: cannot write into {folder!r}")
    return path


def _run_config(run: str) -> dict[str, Any]:
    from jaxnets.cli.options import TRAIN_DEFAULTS, read_run_config

    if not os.path.isdir(run):
        raise option_error("RUN", f"no folder {run!r}; give the --out of a jaxnets train")
    saved = read_run_config(run, "RUN")
    config = {**TRAIN_DEFAULTS, **{k: v for k, v in saved.items() if k in TRAIN_DEFAULTS}}
    config.update(out=os.path.abspath(run), quiet=True, no_compile_cache=True)
    return config


def _metadata(config: dict[str, Any], prepared: Any, checkpoint: str, meta: dict) -> dict:
    """What the export records of the run: where it came from and how inputs were made."""
    info: dict[str, Any] = {
        "model": config["model"],
        "model_arg": list(config["model_arg"]),
        "dataset": config["dataset"],
        "run": config["out"],
        "checkpoint": os.path.basename(checkpoint),
        "step": meta.get("step"),
        "epoch": meta.get("epoch"),
        "resize": prepared.resize,
    }
    if prepared.train.inputs.ndim == 4:
        # every image data set of jaxnets.data is scaled to [0, 1] (the digits' 0..16 too)
        info["image_range"] = [0.0, 1.0]
    return info


def cmd_export(args: argparse.Namespace) -> int:
    """Export a run's checkpoint to ``--out``.

    Args:
      args: the options of ``jaxnets export``.

    Returns:
      The exit status, 0.

    Raises:
      UsageError: for a folder that holds no run, a missing checkpoint, or an ``--out``
        that cannot be written.
      RunError: for a damaged checkpoint, one that does not fit the run's model, or a model
        that cannot be exported with ``--batch``.
    """
    from jaxnets import export as jexport
    from jaxnets.cli.common import build_optimizer
    from jaxnets.cli.evaluate import _checkpoint
    from jaxnets.cli.prepare import prepare
    from jaxnets.cli.registry import CLASS_NAMES
    from jaxnets.data import steps_per_epoch
    from jaxnets.train.checkpoint import restore_checkpoint
    from jaxnets.train.state import create_train_state

    out = _check_out(args.out)
    config = _run_config(args.run)
    path, how = _checkpoint(config["out"], args.checkpoint)
    prepared = prepare(config, val_split_given=False)
    optimizer = build_optimizer(config, steps_per_epoch(prepared.train, config["batch_size"]))
    spec = (config["batch_size"], *prepared.train.inputs.shape[1:])
    template = create_train_state(prepared.model, optimizer, spec, seed=config["seed"])
    try:
        ts, meta = restore_checkpoint(path, template)
    except (ValueError, OSError) as e:  # CheckpointError is a ValueError
        raise RunError(f"cannot restore --checkpoint {args.checkpoint}: {e}") from e
    try:
        exported = jexport.export(
            prepared.model, ts.params, ts.state, spec, batch=args.batch, precision=args.precision
        )
    except ValueError as e:
        raise RunError(str(e)) from e
    names = CLASS_NAMES.get(config["dataset"])
    if names is not None and len(names) != exported.out_avals[0].shape[-1]:
        names = None  # a model with more logits than the data set has classes
    info = _metadata(config, prepared, path, meta)
    info["precision"] = args.precision
    try:
        jexport.save(exported, out, class_names=names, metadata=info)
    except OSError as e:
        raise RunError(f"cannot write --out {args.out}: {e}") from e
    if not args.quiet:
        shape = ", ".join(map(str, ("batch" if args.batch == "dynamic" else args.batch, *spec[1:])))
        print(
            f"exported {os.path.basename(path)} ({how}; step {meta['step']}) of "
            f"{config['model']} on {config['dataset']} to {out}: inputs ({shape}) float32, "
            f"{args.precision}, {exported.out_avals[0].shape[-1]} outputs"
        )
    return 0
