"""Meshes and placement plans: where the batch and the training state live.

Example:
    >>> import jax, jaxnets as jn
    >>> plan = jn.distributed.as_plan(jn.distributed.make_mesh(jax.devices()[:1]))
    >>> plan.size, plan.batch_sharding().spec
    (1, P('data',))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None, axis: str = DATA_AXIS) -> Mesh:
    """A one-axis mesh named ``axis`` over ``devices``.

    Args:
      devices: the devices, each once; default every device of every process
        (``jax.devices()``).
      axis: the name of the mesh axis.

    Returns:
      A ``jax.sharding.Mesh`` with one axis.

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

    Example:
        >>> import jax, jaxnets as jn
        >>> plan = jn.distributed.DataParallel(jn.distributed.make_mesh(jax.devices()[:1]))
        >>> plan.sharding_for((256, 256)).spec
        P()
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
        spec: list[str | None] = [None] * len(shape)
        spec[dim] = self.axis
        return NamedSharding(self.mesh, PartitionSpec(*spec))


MeshLike = Mesh | DataParallel


def as_plan(mesh: Mesh | DataParallel) -> DataParallel:
    """The placement plan of ``mesh``.

    Args:
      mesh: a ``Mesh`` (replicated state, batch along its first axis) or a
        ``DataParallel``, returned as is.

    Returns:
      A ``DataParallel`` whose axis is one of its mesh's axes.

    Example:
        >>> import jax, jaxnets as jn
        >>> jn.distributed.as_plan(jn.distributed.make_mesh(jax.devices()[:1])).axis
        'data'
    """
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

    Args:
      mesh: the mesh; its first axis is the data axis.
      min_size: the fewest elements an array needs to be split; smaller ones are
        replicated.

    Returns:
      A ``DataParallel`` with ``fully_sharded=True``.

    Example:
        >>> import jax, jaxnets as jn
        >>> plan = jn.distributed.fully_sharded(jn.distributed.make_mesh(jax.devices()[:1]))
        >>> plan.sharding_for((256, 256)).spec
        P('data', None)
    """
    return DataParallel(mesh, fully_sharded=True, min_size=min_size, axis=mesh.axis_names[0])
