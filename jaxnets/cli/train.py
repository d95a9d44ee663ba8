"""``jaxnets train``: train a model of the zoo and write the run into its ``--out`` folder."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from jaxnets.cli.common import build_optimizer, format_metrics, use_cache, write_plots
from jaxnets.cli.registry import prepare

#: Options that must match when a run is resumed (epochs may grow).
RESUME_KEYS = (
    "model",
    "model_arg",
    "dataset",
    "batch_size",
    "optimizer",
    "lr",
    "schedule",
    "warmup_epochs",
    "weight_decay",
    "seed",
    "precision",
    "loss_scale",
    "clip_norm",
    "accumulate",
    "freeze",
    "resize",
)


def _write_json(path: str, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` as indented JSON, atomically."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _check_resume(out: str, config: dict[str, Any]) -> None:
    """Refuse to resume the run in ``out`` with :data:`RESUME_KEYS` that differ from its own."""
    path = os.path.join(out, "config.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        saved = json.load(f)
    changed = [k for k in RESUME_KEYS if saved.get(k) != config.get(k)]
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {config.get(k)!r}" for k in changed)
        raise SystemExit(f"jaxnets: --resume with options that differ from the run: {diffs}")


def cmd_train(args: argparse.Namespace) -> int:
    """Train a model and write its config, metrics, checkpoints, plots and results to ``--out``.

    Args:
      args: the options of ``jaxnets train``.

    Returns:
      The exit status, 0.
    """
    from jaxnets.data import steps_per_epoch
    from jaxnets.train import evaluate, make_eval_step
    from jaxnets.train.callbacks import (
        Callback,
        CSVLogger,
        EarlyStopping,
        JSONLinesLogger,
        TensorBoard,
    )
    from jaxnets.train.loop import fit

    use_cache(args)
    out = os.path.abspath(args.out)
    ckpt_dir = os.path.join(out, "checkpoints")
    config = {k: v for k, v in vars(args).items() if k not in ("command",)}
    if args.resume:
        _check_resume(out, config)
    elif os.path.isdir(ckpt_dir) and os.listdir(ckpt_dir):
        raise SystemExit(
            f"jaxnets: {out} already holds checkpoints; pass --resume to continue that run "
            f"or choose another --out"
        )
    model, train, test, _, _ = prepare(args)
    os.makedirs(out, exist_ok=True)
    _write_json(os.path.join(out, "config.json"), config)
    optimizer = build_optimizer(config, steps_per_epoch(train, args.batch_size))
    callbacks: list[Callback] = []
    if args.early_stopping:
        callbacks.append(EarlyStopping("val_loss", patience=args.early_stopping))
    callbacks += [
        JSONLinesLogger(os.path.join(out, "metrics.jsonl")),
        CSVLogger(os.path.join(out, "metrics.csv")),
    ]
    if args.tensorboard:
        callbacks.append(TensorBoard(os.path.join(out, "tensorboard")))
    result = fit(
        model,
        train,
        optimizer=optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        val_data=test,
        seed=args.seed,
        progress=not args.no_progress,
        callbacks=callbacks,
        checkpoint_dir=ckpt_dir,
        resume=args.resume,
        keep_checkpoints=args.keep,
        checkpoint_every_steps=args.checkpoint_every,
        precision=args.precision,
        loss_scale=args.loss_scale,
    )
    eval_step = make_eval_step(model, "softmax_cross_entropy", precision=args.precision)
    metrics = evaluate(eval_step, result.state, test)
    written = write_plots(out, model, result.state, test, result.history, args.precision)
    results = {
        "test": metrics,
        "epochs_done": len(result.history.get("loss", [])),
        "step": int(result.state.step),
        "plots": written,
        "checkpoints": ckpt_dir,
    }
    _write_json(os.path.join(out, "results.json"), results)
    if not args.quiet:
        print(f"{args.model} on {args.dataset}: {format_metrics(metrics)}; everything is in {out}")
    return 0
