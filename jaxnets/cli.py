"""The ``jaxnets`` command (also ``python -m jaxnets``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxnets", description="jaxnets: functional neural networks for JAX."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="train the default network on the digits data and print test accuracy"
    )
    demo.add_argument("--epochs", type=int, default=150, help="training epochs (default 150)")
    demo.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--out-dir", default="runs/demo", help="folder for the curves PNG")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from jaxnets.demo import run_demo

        run_demo(
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            out_dir=args.out_dir,
            progress=not args.no_progress,
        )
    return 0
