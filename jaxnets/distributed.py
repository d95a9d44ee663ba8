"""Data-parallel training on many devices and many hosts through ``jax.sharding``.

One mesh with a ``"data"`` axis; each batch is split along it; parameters, model state
and optimizer state are replicated, or (fully sharded data parallel) the large ones are
split along the same axis. The step is the ordinary jitted step with ``in_shardings`` and
``out_shardings``: XLA's SPMD partitioner inserts the gradient all-reduce (or the
all-gather / reduce-scatter of the sharded weights), so the numbers are those of one
device with the global batch, BatchNorm statistics included. No pmap, no communication
code of our own. Several hosts join through :func:`initialize`; each then
reads its own part of the data (:func:`host_shard`).

Example:
    >>> import numpy as np, optax, jaxnets as jn
    >>> mesh = jn.distributed.make_mesh()
    >>> model = jn.models.mlp((16,), num_classes=2)
    >>> opt = optax.sgd(0.1)
    >>> ts = jn.create_train_state(model, opt, (8, 2))
    >>> step = jn.make_train_step(model, "softmax_cross_entropy", opt, mesh=mesh)
    >>> ts, m = step(ts, (np.ones((8, 2), np.float32), np.zeros(8, np.int32)))
    >>> ts.params["logits"]["kernel"].sharding.spec
    P()
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jaxnets.data.dataset import ArrayDataset

DATA_AXIS = "data"


# --------------------------------------------------------------------------- meshes


def make_mesh(devices: Sequence[jax.Device] | None = None, axis: str = DATA_AXIS) -> Mesh:
    """A one-axis mesh named ``axis`` over ``devices`` (default: every device of every
    process, ``jax.devices()``).

    Example:
        >>> import jax, jaxnets as jn
        >>> mesh = jn.distributed.make_mesh(jax.devices()[:1])
        >>> dict(mesh.shape)
        {'data': 1}
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("make_mesh: the device list is empty")
    if len(set(devices)) != len(devices):
        raise ValueError(f"make_mesh: the device list repeats a device: {devices}")
    return Mesh(np.array(devices), (axis,), axis_types=(AxisType.Auto,))


class DataParallel(NamedTuple):
    """How a training run is spread over a mesh: the batch along ``axis``; the state
    replicated, or with ``fully_sharded=True`` every array of at least ``min_size``
    elements split along ``axis`` on its largest dimension that the axis divides.

    ``fit``, ``make_train_step`` and ``make_eval_step`` take either a plain ``Mesh``
    (replicated) or a ``DataParallel``.
    """

    mesh: Mesh
    fully_sharded: bool = False
    min_size: int = 2**14
    axis: str = DATA_AXIS

    @property
    def size(self) -> int:
        """The number of devices along the data axis."""
        return int(self.mesh.shape[self.axis])

    @property
    def local_size(self) -> int:
        """The number of this process's devices along the data axis."""
        return self.size * len(self.mesh.local_devices) // self.mesh.devices.size

    def batch_sharding(self) -> NamedSharding:
        """Split the leading (example) axis over the data axis."""
        return NamedSharding(self.mesh, PartitionSpec(self.axis))

    def replicated(self) -> NamedSharding:
        """A full copy on every device."""
        return NamedSharding(self.mesh, PartitionSpec())

    def sharding_for(self, shape: Sequence[int]) -> NamedSharding:
        """Where an array of ``shape`` of the training state lives."""
        if not self.fully_sharded or int(np.prod(shape, dtype=np.int64)) < self.min_size:
            return self.replicated()
        divisible = [d for d, n in enumerate(shape) if n % self.size == 0]
        if not divisible:
            return self.replicated()
        dim = max(divisible, key=lambda d: (shape[d], -d))
        spec = [None] * len(shape)
        spec[dim] = self.axis
        return NamedSharding(self.mesh, PartitionSpec(*spec))


MeshLike = Mesh | DataParallel


def as_plan(mesh: Mesh | DataParallel) -> DataParallel:
    """A ``DataParallel`` from a mesh (replicated state) or a ``DataParallel`` as is."""
    if isinstance(mesh, DataParallel):
        plan = mesh
    elif isinstance(mesh, Mesh):
        plan = DataParallel(mesh, axis=mesh.axis_names[0])
    else:
        raise TypeError(
            f"expected a jax.sharding.Mesh or a jaxnets.distributed.DataParallel, got "
            f"{type(mesh).__name__}; build one with jaxnets.distributed.make_mesh()"
        )
    if plan.axis not in plan.mesh.axis_names:
        raise ValueError(
            f"DataParallel: the mesh has axes {plan.mesh.axis_names}, not '{plan.axis}'"
        )
    return plan


def fully_sharded(mesh: Mesh, min_size: int = 2**14) -> DataParallel:
    """Fully sharded data parallelism: arrays of the training state with at least
    ``min_size`` elements (parameters and their optimizer moments) are split along the
    mesh's data axis, so each of ``n`` devices holds about ``1/n`` of them.

    Example:
        >>> import jax, jaxnets as jn
        >>> plan = jn.distributed.fully_sharded(jn.distributed.make_mesh(jax.devices()[:1]))
        >>> plan.sharding_for((256, 256)).spec
        P('data', None)
    """
    return DataParallel(mesh, fully_sharded=True, min_size=min_size, axis=mesh.axis_names[0])


# --------------------------------------------------------------------------- batches


def valid_batch_sizes(devices: int, near: int, count: int = 2) -> list[int]:
    """Multiples of ``devices`` closest to ``near`` (at most ``count`` each side)."""
    below = [m for m in range((near // devices) * devices, 0, -devices)][:count]
    above = [((near // devices) + 1 + i) * devices for i in range(count)]
    return sorted(below + above)


def check_batch_size(
    batch_size: int, mesh: Mesh | DataParallel, *, per_process: bool = True
) -> None:
    """Raise a ValueError naming batch sizes that work if ``batch_size`` does not split
    evenly over the devices of the data axis: this process's devices when the batch is
    per process (training), all of them when it is global (evaluation).

    Example:
        >>> import jax, jaxnets as jn
        >>> jn.distributed.check_batch_size(32, jn.distributed.make_mesh())
    """
    plan = as_plan(mesh)
    n = plan.local_size if per_process else plan.size
    if batch_size % n:
        sizes = ", ".join(str(s) for s in valid_batch_sizes(n, batch_size))
        where = " per process" if per_process and jax.process_count() > 1 else ""
        raise ValueError(
            f"data parallel: a batch of {batch_size} examples{where} does not split evenly "
            f"over the {n} devices of the '{plan.axis}' mesh axis; use a multiple of {n}, "
            f"such as {sizes}"
        )


def _to_global(x: Any, sharding: NamedSharding, local: bool) -> jax.Array:
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    host = np.asarray(x)
    if local:
        return jax.make_array_from_process_local_data(sharding, host)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_batch(batch: Any, mesh: Mesh | DataParallel, *, per_process: bool = True) -> Any:
    """Place every array of ``batch`` on the mesh, split along its first axis.

    With several processes, ``per_process=True`` (training) means each process passes its
    own examples and the global batch is their concatenation in process order;
    ``per_process=False`` (evaluation) means every process passes the same global batch.
    With one process both are the same. Raises if the batch does not divide the devices.
    """
    plan = as_plan(mesh)
    sharding = plan.batch_sharding()
    leaves = jax.tree.leaves(batch)
    if not leaves:
        raise ValueError("shard_batch: the batch has no arrays")
    rows = np.shape(leaves[0])[0] if np.ndim(leaves[0]) else None
    if rows is None or any(np.ndim(v) == 0 or np.shape(v)[0] != rows for v in leaves):
        raise ValueError(
            f"shard_batch: every array of a batch needs the same leading (example) axis, "
            f"got shapes {[np.shape(v) for v in leaves]}"
        )
    already = all(isinstance(v, jax.Array) and v.sharding == sharding for v in leaves)
    if not already:
        check_batch_size(rows, plan, per_process=per_process)
    return jax.tree.map(lambda v: _to_global(v, sharding, per_process), batch)


def pad_batch(batch: tuple, multiple: int) -> tuple:
    """Pad an evaluation batch ``(inputs, labels, mask)`` with zero-mask examples so its
    size is a multiple of ``multiple``; padded examples count zero times.

    Example:
        >>> import numpy as np, jaxnets as jn
        >>> x, y, mask = jn.distributed.pad_batch((np.ones((5, 2)), np.ones(5), np.ones(5)), 4)
        >>> x.shape, mask.tolist()
        ((8, 2), [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    """
    rows = np.shape(batch[0])[0]
    pad = -rows % multiple
    if pad == 0:
        return batch
    return tuple(
        np.concatenate([np.asarray(v), np.zeros((pad, *np.shape(v)[1:]), np.asarray(v).dtype)])
        for v in batch
    )


def prefetch(
    iterator: Iterable[Any], mesh: Mesh | DataParallel, size: int = 2, *, per_process: bool = True
) -> Iterator[Any]:
    """Place the next ``size`` batches on the mesh (split along the data axis) while the
    current one is used, so the devices do not wait on Python.

    Example:
        >>> import numpy as np, jaxnets as jn
        >>> mesh = jn.distributed.make_mesh()
        >>> data = jn.data.xor(8)
        >>> batches = jn.distributed.prefetch(jn.data.batches(data, 8), mesh)
        >>> [x.sharding.spec for x, _ in batches][:2]
        [P('data',), P('data',)]
    """
    plan = as_plan(mesh)
    queue: collections.deque = collections.deque()
    for item in iterator:
        queue.append(shard_batch(item, plan, per_process=per_process))
        if len(queue) > size:
            yield queue.popleft()
    while queue:
        yield queue.popleft()


# --------------------------------------------------------------------------- state


def place_array(x: Any, sharding: NamedSharding) -> Any:
    """``x`` (an array, a key or host data) on ``sharding``; with several processes every
    process passes the same value."""
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = place_array(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def state_shardings(tree: Any, mesh: Mesh | DataParallel) -> Any:
    """The sharding of every array of ``tree`` (a train state, params, ...) under the plan."""
    plan = as_plan(mesh)
    return jax.tree.map(lambda x: plan.sharding_for(np.shape(x)), tree)


def place_state(tree: Any, mesh: Mesh | DataParallel) -> Any:
    """Put ``tree`` on the mesh: replicated, or split as :func:`fully_sharded` says.

    With several processes every process must pass the same values (same seed).

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> plan = jn.distributed.fully_sharded(jn.distributed.make_mesh(), min_size=4)
        >>> w = jn.distributed.place_state({"w": jnp.ones((8, 2))}, plan)["w"]
        >>> w.sharding.spec
        P('data', None)
    """
    plan = as_plan(mesh)
    return jax.tree.map(lambda x: place_array(x, plan.sharding_for(np.shape(x))), tree)


def bytes_per_device(tree: Any) -> dict[jax.Device, int]:
    """How many bytes of ``tree``'s arrays each (addressable) device holds."""
    held: dict[jax.Device, int] = {}
    for leaf in jax.tree.leaves(tree):
        for shard in leaf.addressable_shards:
            held[shard.device] = held.get(shard.device, 0) + shard.data.nbytes
    return held


# --------------------------------------------------------------------------- evaluation


def eval_batch_size(batch_size: int, mesh: Mesh | DataParallel) -> int:
    """``batch_size`` rounded up to a multiple of the data axis size (no padding needed
    in the step but for the last batch, which ``eval_batches`` pads with mask 0)."""
    n = as_plan(mesh).size
    return -(-batch_size // n) * n


# --------------------------------------------------------------------------- hosts


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    **kwargs: Any,
) -> None:
    """Join a multi-host run (``jax.distributed.initialize``), before any other JAX call.

    Arguments left out are read from ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of
    process 0), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``; if those are unset too,
    JAX detects the cluster (SLURM, Open MPI, Cloud TPU, ...). Afterwards
    ``jax.devices()`` lists the devices of every process, and :func:`make_mesh` spans them.
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
    """This process's part of ``data``: contiguous, equal-sized blocks in process order
    (the last ``len(data) % process_count`` examples are left out, so every process runs
    the same number of steps). Defaults to ``jax.process_index()`` / ``process_count()``.

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


__all__ = [
    "DATA_AXIS",
    "DataParallel",
    "MeshLike",
    "as_plan",
    "bytes_per_device",
    "check_batch_size",
    "eval_batch_size",
    "fully_sharded",
    "host_shard",
    "initialize",
    "make_mesh",
    "pad_batch",
    "place_array",
    "place_state",
    "prefetch",
    "shard_batch",
    "state_shardings",
    "valid_batch_sizes",
]
