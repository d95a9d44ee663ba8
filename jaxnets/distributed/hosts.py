"""Several hosts: joining a multi-process run and each process's part of the data.

Example:
    >>> import numpy as np, jaxnets as jn
    >>> data = jn.data.ArrayDataset(np.zeros((8, 2)), np.zeros(8))
    >>> [len(jn.distributed.host_shard(data, i, 2)) for i in range(2)]
    [4, 4]
"""

from __future__ import annotations

import os
from typing import Any

import jax

from jaxnets.data.dataset import ArrayDataset


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    **kwargs: Any,
) -> None:
    """Join a multi-host run (``jax.distributed.initialize``), before any other JAX call.

    If the arguments and their environment variables are unset, JAX detects the cluster
    (SLURM, Open MPI, Cloud TPU, ...). Afterwards ``jax.devices()`` lists the devices of
    every process, and :func:`make_mesh` spans them.

    Args:
      coordinator: ``host:port`` of process 0; default ``JAX_COORDINATOR_ADDRESS``.
      num_processes: the number of processes; default ``JAX_NUM_PROCESSES``.
      process_id: this process's index; default ``JAX_PROCESS_ID``.
      **kwargs: passed on to ``jax.distributed.initialize``.

    Returns:
      None.

    Example:
        >>> import jaxnets as jn
        >>> jn.distributed.initialize("127.0.0.1:1", num_processes=2, process_id=2)
        Traceback (most recent call last):
        ValueError: distributed.initialize: process_id 2 is outside 0..1 for 2 processes
    """
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if num_processes is None and "JAX_NUM_PROCESSES" in os.environ:
        num_processes = int(os.environ["JAX_NUM_PROCESSES"])
    if process_id is None and "JAX_PROCESS_ID" in os.environ:
        process_id = int(os.environ["JAX_PROCESS_ID"])
    if (
        num_processes is not None
        and process_id is not None
        and not (0 <= process_id < num_processes)
    ):
        raise ValueError(
            f"distributed.initialize: process_id {process_id} is outside "
            f"0..{num_processes - 1} for {num_processes} processes"
        )
    jax.distributed.initialize(coordinator, num_processes, process_id, **kwargs)


def host_shard(
    data: ArrayDataset, process_index: int | None = None, process_count: int | None = None
) -> ArrayDataset:
    """This process's part of ``data``: contiguous, equal-sized blocks in process order.

    The last ``len(data) % process_count`` examples are left out, so every process runs
    the same number of steps.

    Args:
      data: the whole data set, the same in every process.
      process_index: this process's index; default ``jax.process_index()``.
      process_count: the number of processes; default ``jax.process_count()``.

    Returns:
      The examples of block ``process_index``.

    Example:
        >>> import numpy as np, jaxnets as jn
        >>> data = jn.data.ArrayDataset(np.arange(10.0)[:, None], np.arange(10))
        >>> jn.distributed.host_shard(data, 1, 3).labels.tolist()
        [3, 4, 5]
    """
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"host_shard: process_index {index} is outside 0..{count - 1}")
    per = len(data.check()) // count
    if per == 0:
        raise ValueError(f"host_shard: {len(data)} examples cannot feed {count} processes")
    return data.take(slice(index * per, (index + 1) * per))
