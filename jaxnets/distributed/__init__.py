"""Data-parallel training on many devices and many hosts through ``jax.sharding``.

One mesh with a ``"data"`` axis; each batch is split along it; the training state is
replicated or (fully sharded) split along the same axis; XLA inserts the communication.
See ``docs/parallel.md``.

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

from jaxnets.distributed.batches import _to_global as _to_global
from jaxnets.distributed.batches import (
    check_batch_size,
    eval_batch_size,
    pad_batch,
    prefetch,
    shard_batch,
    valid_batch_sizes,
)
from jaxnets.distributed.hosts import host_shard, initialize
from jaxnets.distributed.mesh import (
    DATA_AXIS,
    DataParallel,
    MeshLike,
    as_plan,
    fully_sharded,
    make_mesh,
)
from jaxnets.distributed.state import bytes_per_device, place_array, place_state, state_shardings

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
