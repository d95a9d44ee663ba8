"""The train state as flat arrays by path, and back, with every path, shape and dtype
checked (what :mod:`jaxnets.train.checkpoint` writes and reads)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core import check_tree_matches, path_str


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def flatten_state(tree: Any) -> dict[str, np.ndarray]:
    """Every leaf of ``tree`` as a host array under its ``a/b/c`` path (keys as key data).

    Args:
      tree: the pytree, such as a :class:`~jaxnets.train.state.TrainState`.

    Returns:
      A dict of numpy arrays by path, in the tree's order.
    """
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    flat: dict[str, np.ndarray] = {}
    for path, leaf in leaves:
        value = jax.random.key_data(leaf) if _is_key(leaf) else leaf
        flat[path_str(path)] = np.asarray(jax.device_get(value))
    return flat


def _template_specs(template: Any) -> dict[str, jax.ShapeDtypeStruct]:
    leaves = jax.tree_util.tree_flatten_with_path(template)[0]
    specs = {}
    for path, leaf in leaves:
        if _is_key(leaf):
            leaf = jax.eval_shape(jax.random.key_data, leaf)
        specs[path_str(path)] = jax.ShapeDtypeStruct(np.shape(leaf), jnp.result_type(leaf))
    return specs


def check_flat_matches(
    expected: Mapping[str, jax.ShapeDtypeStruct], actual: Mapping[str, Any], what: str
) -> None:
    """Check ``actual`` has every path of ``expected`` (in its order, so parameters are
    checked before optimizer state) with the same shape and dtype, and no other path.

    Args:
      expected: the shape and dtype of each path.
      actual: the arrays by path.
      what: the start of the error messages.

    Raises:
      ValueError: naming the first path that is missing, extra, or of another shape or dtype.
    """
    for path, spec in expected.items():
        if path not in actual:
            raise ValueError(f"{what}: missing '{path}' (expected shape {tuple(spec.shape)})")
        check_tree_matches({path: spec}, {path: actual[path]}, what)
    extra = [path for path in actual if path not in expected]
    if extra:
        raise ValueError(f"{what}: unexpected entries the model does not have: {extra[:5]}")


def unflatten_state(template: Any, flat: Mapping[str, np.ndarray], what: str = "checkpoint"):
    """Rebuild ``template``'s pytree from ``flat`` after checking paths, shapes, dtypes.

    Args:
      template: a pytree of the wanted structure, shapes and dtypes (and key types).
      flat: the arrays by path, as :func:`flatten_state` makes them.
      what: the start of the error message; a ValueError names the first path that differs.

    Returns:
      ``template``'s pytree holding ``flat``'s values as JAX arrays.
    """
    check_flat_matches(_template_specs(template), flat, what)
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    values = []
    for path, leaf in paths_leaves:
        value = jnp.asarray(flat[path_str(path)])
        if _is_key(leaf):
            value = jax.random.wrap_key_data(value, impl=jax.random.key_impl(leaf))
        values.append(value)
    return jax.tree_util.tree_unflatten(treedef, values)
