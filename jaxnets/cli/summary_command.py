"""``jaxnets summary``: print a model's layer table (shapes only; nothing is computed)."""

from __future__ import annotations

import argparse

from jaxnets.cli.registry import build_model, prepare


def cmd_summary(args: argparse.Namespace) -> int:
    """Print the summary table of ``--model`` on ``--input-shape`` or ``--dataset``'s inputs.

    Args:
      args: the options of ``jaxnets summary``.

    Returns:
      The exit status, 0.
    """
    from jaxnets.summary import summary

    if args.input_shape:
        shape = tuple(int(d) for d in args.input_shape.split(",") if d.strip())
        model = build_model(args.model, args.num_classes, args.model_arg)
    elif args.dataset:
        args.batch_size = max(args.batch_size, 1)
        model, train, _, _, _ = prepare(args)
        shape = train.inputs.shape[1:]
    else:
        raise SystemExit("jaxnets summary: give --input-shape H,W,C or --dataset NAME")
    summary(model, (args.batch_size, *shape))
    return 0
