"""Fill a model's params and state, leaf by leaf, from another library's arrays, checked."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core.trees import path_str, shape_tree


class TreeFiller:
    """The params and state a model expects, filled one path (``"stage2/block1/..."``) at a
    time with shape checks, then returned as the model's own nested dicts.

    Args:
      model: the jaxnets model.
      input_spec: its input shape (with the batch) or ``jax.ShapeDtypeStruct``.
      where: the caller, the start of every message (e.g. ``"load_weights"``).

    Example:
        >>> import numpy as np, jaxnets as jn
        >>> filler = TreeFiller(jn.Dense(2), (1, 3), "demo")
        >>> filler.put("params", "kernel", np.ones((3, 2)), "w")
        >>> filler.put("params", "bias", np.zeros(2), "b")
        >>> params, state = filler.result()
        >>> params["kernel"].shape, state
        ((3, 2), {})
    """

    def __init__(self, model: Any, input_spec: Any, where: str):
        _, params, state = shape_tree(model, input_spec)
        self.where = where
        self.trees = {"params": params, "state": state}
        self.expected = {
            part: {path_str(p): v for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}
            for part, tree in self.trees.items()
        }
        self.filled: dict[str, dict[str, Any]] = {"params": {}, "state": {}}

    def has(self, part: str, path: str) -> bool:
        """Whether the model has the leaf ``path`` in ``part`` ("params" or "state").

        Args:
          part: ``"params"`` or ``"state"``.
          path: the leaf's path, keys joined with ``/``.

        Returns:
          True when the model expects that leaf.
        """
        return path in self.expected[part]

    def shape(self, part: str, path: str) -> tuple[int, ...]:
        """The shape the model expects at ``path`` (which must exist: see :meth:`has`).

        Args:
          part: ``"params"`` or ``"state"``.
          path: the leaf's path.

        Returns:
          The shape.
        """
        return tuple(self.expected[part][path].shape)

    def put(self, part: str, path: str, value: Any, source: str) -> None:
        """Set one leaf, checking its shape.

        Args:
          part: ``"params"`` or ``"state"``.
          path: the leaf's path.
          value: the array, already in jaxnets' layout.
          source: what it is in the file, for messages (e.g. ``"layer 'fc1' weight 0"``).

        Raises:
          ValueError: the model has no such leaf, or the shapes differ (both are named).
        """
        if path not in self.expected[part]:
            raise ValueError(
                f"{self.where}: {source} has no place in the model: no {part} {path!r}"
            )
        value = np.asarray(value)
        want = self.expected[part][path]
        if tuple(value.shape) != tuple(want.shape):
            raise ValueError(
                f"{self.where}: {source} has shape {tuple(value.shape)}, but the model's "
                f"{part} {path!r} has shape {tuple(want.shape)}"
            )
        self.filled[part][path] = jnp.asarray(value, want.dtype)

    def result(self) -> tuple[Any, Any]:
        """``(params, state)`` once every leaf is set.

        Returns:
          The nested dicts, in the model's structure.

        Raises:
          ValueError: naming the first leaf that nothing set.
        """
        out = []
        for part, tree in self.trees.items():
            leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
            values = []
            for p, _ in leaves:
                path = path_str(p)
                if path not in self.filled[part]:
                    raise ValueError(f"{self.where}: nothing in the file sets {part} {path!r}")
                values.append(self.filled[part][path])
            out.append(jax.tree_util.tree_unflatten(treedef, values))
        return out[0], out[1]
