"""``jaxnets evaluate``: restore a trained run's checkpoint and evaluate it on its test set."""

from __future__ import annotations

import argparse
import json
import os

from jaxnets.cli.common import build_optimizer, format_metrics, use_cache, write_plots
from jaxnets.cli.registry import prepare


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print a run's test metrics and write its confusion matrix and predictions to RUN/plots.

    Args:
      args: the options of ``jaxnets evaluate``.

    Returns:
      The exit status, 0.
    """
    from jaxnets.data import steps_per_epoch
    from jaxnets.train import evaluate, make_eval_step
    from jaxnets.train.checkpoint import CheckpointManager, restore_checkpoint
    from jaxnets.train.state import create_train_state

    use_cache(args)
    run = os.path.abspath(args.run)
    config_path = os.path.join(run, "config.json")
    if not os.path.exists(config_path):
        raise SystemExit(f"jaxnets: {run} has no config.json; is it a jaxnets train --out?")
    with open(config_path) as f:
        config = json.load(f)
    if args.data_dir:
        config["data_dir"] = args.data_dir
    config["quiet"] = args.quiet
    ns = argparse.Namespace(**config)
    model, train, test, _, _ = prepare(ns)
    optimizer = build_optimizer(config, steps_per_epoch(train, config["batch_size"]))
    spec = (config["batch_size"], *train.inputs.shape[1:])
    template = create_train_state(model, optimizer, spec, seed=config["seed"])
    manager = CheckpointManager(os.path.join(run, "checkpoints"), keep=config["keep"])
    if args.checkpoint == "best":
        path = manager.best_path() if os.path.exists(manager.best_path()) else manager.latest()
    elif args.checkpoint == "latest":
        path = manager.latest()
    else:
        path = args.checkpoint
    if path is None:
        raise SystemExit(f"jaxnets: no checkpoint in {manager.directory}")
    ts, meta = restore_checkpoint(path, template)
    eval_step = make_eval_step(model, "softmax_cross_entropy", precision=config["precision"])
    metrics = evaluate(eval_step, ts, test)
    written = write_plots(run, model, ts, test, meta.get("history", {}), config["precision"])
    if not args.quiet:
        print(f"{os.path.basename(path)} (step {meta['step']}): {format_metrics(metrics)}")
        print("plots: " + ", ".join(written.values()))
    return 0
