"""``jaxnets train``: train a model of the zoo and write the run into its ``--out`` folder.

Validation data is a seeded ``--val-split`` of the training data (or the data set's own
validation set): it chooses ``best.jnc`` and drives early stopping. The test set is
evaluated once, at the end, on ``best.jnc``, and reported as ``test_*``. Every option is
checked before anything is created or changed under ``--out``, and ``config.json`` is
(re)written only once the run has started from its restored state.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from jaxnets.cli.common import build_optimizer, format_metrics, use_cache, write_json, write_plots
from jaxnets.cli.errors import RunError
from jaxnets.cli.options import RESUME_KEYS, RESUME_MAY_CHANGE, TRAIN_DEFAULTS, train_config
from jaxnets.cli.prepare import Prepared, check_training, prepare

__all__ = ["RESUME_KEYS", "RESUME_MAY_CHANGE", "cmd_train"]


def _config_writer(path: str, config: dict[str, Any]) -> Any:
    """A callback that writes ``config`` to ``path`` when training begins, that is after
    ``fit`` has restored the run's checkpoint (a failed restore leaves the old file)."""
    from jaxnets.train.callbacks import Callback

    class WriteConfig(Callback):
        def on_train_begin(self, run: Any) -> None:
            write_json(path, config)

    return WriteConfig()


def _callbacks(config: dict[str, Any], saved: dict[str, Any], has_val: bool) -> list:
    """The run's callbacks: the config writer first, then early stopping and the logs."""
    from jaxnets.train.callbacks import CSVLogger, EarlyStopping, JSONLinesLogger, TensorBoard

    out = config["out"]
    callbacks = [_config_writer(os.path.join(out, "config.json"), saved)]
    if config["early_stopping"] and has_val:
        callbacks.append(EarlyStopping("val_loss", patience=config["early_stopping"]))
    callbacks += [
        JSONLinesLogger(os.path.join(out, "metrics.jsonl")),
        CSVLogger(os.path.join(out, "metrics.csv")),
    ]
    if config["tensorboard"]:
        callbacks.append(TensorBoard(os.path.join(out, "tensorboard")))
    return callbacks


def _saved_config(config: dict[str, Any], prepared: Prepared) -> dict[str, Any]:
    """What ``config.json`` records: every option, the validation data and the versions."""
    from jaxnets.cli.parser import versions

    saved = {k: config[k] for k in TRAIN_DEFAULTS}
    saved["validation"] = prepared.validation
    saved["versions"] = versions()
    return saved


def _test_best(config: dict[str, Any], prepared: Prepared, result: Any, monitor: str):
    """``(state, best)``: ``best.jnc`` restored (or the last state), and what chose it."""
    from jaxnets.train.checkpoint import restore_checkpoint

    path = os.path.join(config["out"], "checkpoints", "best.jnc")
    if not os.path.exists(path):
        return result.state, {"checkpoint": "last", "epoch": len(result.history.get("loss", []))}
    state, meta = restore_checkpoint(path, result.state)
    logs = meta.get("logs", {})
    best = {
        "checkpoint": "best.jnc",
        "epoch": meta["epoch"],
        "step": meta["step"],
        "monitor": monitor,
        "value": logs.get(monitor),
        "val": {k[4:]: v for k, v in logs.items() if k.startswith("val_")},
    }
    return state, best


def cmd_train(args: argparse.Namespace) -> int:
    """Train a model and write its config, metrics, checkpoints, plots and results to ``--out``.

    Args:
      args: the options of ``jaxnets train`` (only those typed; see
        :func:`jaxnets.cli.options.train_config`).

    Returns:
      The exit status, 0.

    Raises:
      UsageError: for options that are wrong, conflict or do nothing (nothing written).
      RunError: when training or restoring fails (a damaged checkpoint, a non-finite loss).
    """
    config = train_config(args)
    use_cache(config)
    prepared = prepare(config, val_split_given="val_split" in vars(args))
    steps = check_training(config, prepared)

    from jaxnets.train import evaluate, make_eval_step
    from jaxnets.train.loop import fit

    out = config["out"]
    saved = _saved_config(config, prepared)
    optimizer = build_optimizer(config, steps)
    monitor = "val_loss" if prepared.val is not None else "loss"
    os.makedirs(out, exist_ok=True)
    try:
        result = fit(
            prepared.model,
            prepared.train,
            optimizer=optimizer,
            epochs=config["epochs"],
            batch_size=config["batch_size"],
            val_data=prepared.val,
            seed=config["seed"],
            progress=not config["no_progress"],
            callbacks=_callbacks(config, saved, prepared.val is not None),
            checkpoint_dir=os.path.join(out, "checkpoints"),
            resume=config["resume"],
            keep_checkpoints=config["keep"],
            checkpoint_monitor=monitor,
            checkpoint_every_steps=config["checkpoint_every"],
            precision=config["precision"],
            loss_scale=config["loss_scale"],
        )
        state, best = _test_best(config, prepared, result, monitor)
    except (ValueError, FloatingPointError, OSError) as e:  # CheckpointError is a ValueError
        raise RunError(str(e)) from e
    eval_step = make_eval_step(
        prepared.model, "softmax_cross_entropy", precision=config["precision"]
    )
    test = evaluate(eval_step, state, prepared.test)
    written = write_plots(
        out, prepared.model, state, prepared.test, config["precision"], history=result.history
    )
    results = {
        **{f"test_{k}": v for k, v in test.items()},
        **{f"val_{k}": v for k, v in best.get("val", {}).items()},
        "tested": {k: v for k, v in best.items() if k != "val"},
        "test_examples": len(prepared.test),
        "validation": prepared.validation,
        "epochs_done": len(result.history.get("loss", [])),
        "step": int(result.state.step),
        "plots": written,
        "checkpoints": os.path.join(out, "checkpoints"),
    }
    write_json(os.path.join(out, "results.json"), results)
    if not config["quiet"]:
        chosen = f"{best['checkpoint']} (epoch {best['epoch']}"
        if best.get("val"):
            chosen += f", chosen on val_loss; {format_metrics(best['val'], 'val')})"
        elif best["checkpoint"] == "best.jnc":
            chosen += ", chosen on the training loss: --val-split 0)"
        else:
            chosen += ")"
        print(
            f"{config['model']} on {config['dataset']}: {chosen}; {format_metrics(test, 'test')}"
            f"; everything is in {out}"
        )
    return 0
