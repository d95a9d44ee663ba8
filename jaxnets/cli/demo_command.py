"""``jaxnets demo``: train the default network on the digits data (:mod:`jaxnets.demo`)."""

from __future__ import annotations

import argparse


def cmd_demo(args: argparse.Namespace) -> int:
    """Run :func:`jaxnets.demo.run_demo` with the command's options.

    Args:
      args: the options of ``jaxnets demo``.

    Returns:
      The exit status, 0.
    """
    from jaxnets.demo import run_demo

    run_demo(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        out_dir=args.out_dir,
        progress=not args.no_progress,
        augment=not args.no_augment,
    )
    return 0
