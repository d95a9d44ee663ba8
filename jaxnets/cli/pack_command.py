"""``jaxnets pack``: write an image folder or a built-in data set as a packed record file."""

from __future__ import annotations

import argparse
import os

from jaxnets.cli.errors import UsageError, option_error


def cmd_pack(args: argparse.Namespace) -> int:
    """Pack ``--folder`` (class folders of images) or ``--dataset``'s split into ``--out``.

    The records hold uint8 pixels (images in ``[0, 1]`` are scaled by 255) and int32
    labels; ``--out`` and ``--out.json`` appear only when every example is written.

    Args:
      args: the options of ``jaxnets pack`` (only those typed).

    Returns:
      The exit status, 0.

    Raises:
      UsageError: neither or both of ``--folder`` and ``--dataset``, options that do
        nothing with the one given, an existing ``--out``, a folder that cannot be read.
    """
    from collections.abc import Iterable
    from typing import Any

    import numpy as np

    from jaxnets import data

    typed = vars(args)
    out = typed["out"]
    if os.path.exists(out) or os.path.exists(f"{out}.json"):
        raise option_error("--out", f"{out} exists; packing never replaces a file, give a new name")
    if ("folder" in typed) == ("dataset" in typed):
        raise UsageError("give --folder DIR (class folders of images) or --dataset NAME")
    if "folder" in typed:
        for name in ("data_dir", "split"):
            if name in typed:
                raise option_error(f"--{name.replace('_', '-')}", "does nothing with --folder")
        if "size" not in typed:
            raise option_error("--size", "--folder needs the images' size, e.g. --size 28,28")
        if len(typed["size"]) != 2:
            raise option_error("--size", f"must be HEIGHT,WIDTH, got {typed['size']}")
        try:
            source = data.ImageFolder(
                typed["folder"], size=typed["size"], channels=typed.get("channels", 3)
            )
        except (OSError, ValueError) as e:
            raise option_error("--folder", str(e)) from None
        examples: Iterable[tuple[Any, Any]] = (source[i] for i in range(len(source)))
        classes: list[str] | None = source.classes
    else:
        for name in ("size", "channels"):
            if name in typed:
                raise option_error(f"--{name}", "does nothing with --dataset; it is for --folder")
        from jaxnets.cli.options import check_data_dir
        from jaxnets.cli.registry import CLASS_NAMES, load_dataset

        check_data_dir(typed["dataset"], typed.get("data_dir"))
        parts = load_dataset(typed["dataset"], typed.get("data_dir"))
        split = getattr(parts, typed.get("split", "train"))
        x = np.asarray(split.inputs)
        if x.dtype != np.uint8:
            x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
        examples = zip(x, np.asarray(split.labels), strict=True)
        classes = CLASS_NAMES.get(typed["dataset"])
    try:
        n = data.write_records(out, examples, classes=classes)
    except ValueError as e:
        raise option_error("--folder" if "folder" in typed else "--dataset", str(e)) from None
    if not typed.get("quiet"):
        records = data.RecordFile(out)
        print(
            f"packed {n} examples of shape {records.shape} ({records.dtype}) into {out} "
            f"({os.path.getsize(out) / 1e6:.1f} MB)"
        )
    return 0
