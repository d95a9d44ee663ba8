"""Input-pipeline throughput, and whether the file pipeline starves the train step.

1. Decoded images per second over one epoch of a PNG folder (the digits upsampled to
   28x28, written by ``jn.data.write_image_folder``) with 0, 1 and 2 worker processes,
   and from the same images packed into an ArrayRecord file (``jn.data.write_records``).
2. The LeNet-5 train step fed by ``jn.fit`` from the packed pipeline against the same
   step fed from the same examples in memory (an ``ArrayDataset``): the ratio of the
   epoch times (compilation excluded: one warm-up epoch each). At 1.0 the device never
   waits on the host.

Rounds are interleaved (A, B, A, B ...) and medians reported; JSON on stdout and in
``--out``.

Usage:
    python benchmarks/bench_pipeline.py --out benchmarks/results/pipeline_2core.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import optax

sys.path.insert(0, os.path.dirname(__file__))

import harness

import jaxnets as jn


def digits_28(n: int) -> jn.data.ArrayDataset:
    """``n`` digits (repeated as needed) upsampled bilinearly to 28x28, in [0, 1]."""
    from jaxnets.cli.registry import resize_images

    train, _ = jn.data.load_digits()
    reps = -(-n // len(train))
    data = jn.data.ArrayDataset(
        np.concatenate([train.inputs] * reps)[:n], np.concatenate([train.labels] * reps)[:n]
    )
    return resize_images(data, 28)


def epoch_seconds(pipeline: jn.data.Pipeline, epoch: int) -> float:
    start = time.perf_counter()
    for _ in pipeline.epoch(epoch):
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    data = digits_28(args.images)
    tmp = tempfile.mkdtemp(prefix="bench_pipeline_")
    root = os.path.join(tmp, "train")
    jn.data.write_image_folder(root, data)
    folder = jn.data.ImageFolder(root, size=(28, 28), channels=1)
    records_path = os.path.join(tmp, "train.array_record")
    jn.data.write_records(records_path, (folder[i] for i in range(len(folder))))
    records = jn.data.RecordFile(records_path)

    pipelines = {
        f"png_workers_{w}": jn.data.Pipeline(folder, args.batch_size, workers=w)
        for w in args.workers
    }
    pipelines["records_workers_0"] = jn.data.Pipeline(records, args.batch_size)
    for p in pipelines.values():
        epoch_seconds(p, 0)  # start-up: worker processes, page cache
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for r in range(args.rounds):
        for name, p in pipelines.items():
            times[name].append(epoch_seconds(p, r + 1))
    images = len(pipelines["records_workers_0"]) * args.batch_size
    throughput = {
        name: {
            "images_per_s": images / statistics.median(t),
            "epoch_s_median": statistics.median(t),
        }
        for name, t in times.items()
    }

    # the same examples in memory, in the folder's order (as the PNGs quantise them)
    x = np.stack([records[i][0] for i in range(len(records))]).astype(np.float32) / 255.0
    y = np.asarray([records[i][1] for i in range(len(records))], np.int32)
    arrays = jn.data.ArrayDataset(x, y)
    model = jn.models.lenet5()
    optimizer = optax.adam(1e-3)
    step = jn.make_train_step(model, "softmax_cross_entropy", optimizer)
    ts = jn.create_train_state(model, optimizer, (args.batch_size, 28, 28, 1))
    pipeline = jn.data.Pipeline(records, args.batch_size)
    feeds = {
        "arrays": lambda e: jn.data.batches(arrays, args.batch_size, seed=0, epoch=e),
        "records": pipeline.epoch,
    }

    def run_epoch(ts, feed, epoch):
        for batch in jn.data.prefetch_to_device(feed(epoch)):  # as fit feeds its steps
            ts, _ = step(ts, batch)
        return harness.block(ts)

    for feed in feeds.values():
        ts = run_epoch(ts, feed, 0)  # compiles the step; starts the readers
    fit_times: dict[str, list[float]] = {name: [] for name in feeds}
    for r in range(args.rounds):
        for name, feed in feeds.items():
            start = time.perf_counter()
            ts = run_epoch(ts, feed, r + 1)
            fit_times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in fit_times.items()}
    payload = {
        "benchmark": "pipeline",
        "environment": harness.environment(),
        "images": images,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "decode_throughput": throughput,
        "lenet_epoch_s_median": medians,
        "lenet_records_over_arrays": medians["records"] / medians["arrays"],
        "load_average": os.getloadavg(),
    }
    if args.out:
        harness.write_json(args.out, payload)
    else:
        print(payload)


if __name__ == "__main__":
    main()
