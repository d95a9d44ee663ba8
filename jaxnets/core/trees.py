"""Whole models and parameter trees: initialising, counting, shapes and matching."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxnets.core.contract import Array, Layer, PyTree, SpecLike, _prefix_errors
from jaxnets.core.door import check_key
from jaxnets.core.specs import as_spec


def _check_model(where: str, model: Any) -> None:
    if not isinstance(model, Layer):
        raise TypeError(
            f"{where}: model must be a Layer, got {type(model).__name__}: {model!r:.60}"
        )


def init_model(model: Layer, key: Array, input_spec: SpecLike):
    """``model.init`` with errors prefixed by the model's name or kind.

    Args:
      model: the model.
      key: the PRNG key for the initialisers.
      input_spec: anything :func:`as_spec` accepts.

    Returns:
      ``(output_spec, params, state)``.
    """
    _check_model("init_model", model)
    with _prefix_errors(model.name or model.kind):
        return model.init(key, as_spec(input_spec))


def count_params(tree: PyTree) -> int:
    """Total number of scalars in a pytree of arrays or ShapeDtypeStructs.

    Args:
      tree: the pytree; leaves without a ``shape`` are not counted.

    Returns:
      The sum of the leaves' sizes.
    """
    return sum(math.prod(x.shape) for x in jax.tree.leaves(tree) if hasattr(x, "shape"))


def shape_tree(model: Layer, input_spec: SpecLike, key: Array | None = None):
    """``(output_spec, params, state)`` as ShapeDtypeStructs, without allocating weights.

    Args:
      model: the model.
      input_spec: anything :func:`as_spec` accepts.
      key: the PRNG key (default ``jax.random.key(0)``).

    Returns:
      ``(output_spec, params, state)``, every leaf a ShapeDtypeStruct.
    """
    _check_model("shape_tree", model)
    key = jax.random.key(0) if key is None else key
    check_key("shape_tree", key, optional=False)
    spec = as_spec(input_spec)
    return jax.eval_shape(lambda k: model.init(k, spec), key)


def path_str(path: Any) -> str:
    """A pytree key path as ``"a/b/0"``: the one spelling of parameter paths in jaxnets.

    Args:
      path: a key path from ``jax.tree_util.tree_flatten_with_path``.

    Returns:
      The keys, indices and attribute names joined by ``/``.

    Example:
        >>> import jax
        >>> [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path({"a": [1, 2]})[0]]
        ['a/0', 'a/1']
    """
    return "/".join(str(getattr(p, "key", getattr(p, "idx", getattr(p, "name", p)))) for p in path)


def check_tree_matches(expected: PyTree, actual: PyTree, what: str = "params") -> None:
    """Check ``actual`` has the keys, shapes and dtypes of ``expected``.

    Args:
      expected: the reference tree (arrays or ShapeDtypeStructs).
      actual: the tree to check.
      what: the name put first in error messages.

    Raises:
      ValueError: naming the first missing or mismatching path (with both shapes or
        dtypes), or up to five entries ``expected`` does not have.
    """
    exp = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
    act = dict(jax.tree_util.tree_flatten_with_path(actual)[0])
    exp_paths = {path_str(p): v for p, v in exp.items()}
    act_paths = {path_str(p): v for p, v in act.items()}
    for path, e in exp_paths.items():
        if path not in act_paths:
            raise ValueError(f"{what}: missing '{path}' (expected shape {tuple(e.shape)})")
        a = act_paths[path]
        if tuple(a.shape) != tuple(e.shape):
            raise ValueError(
                f"{what}: '{path}' has shape {tuple(a.shape)}, the model expects {tuple(e.shape)}"
            )
        if jnp.dtype(a.dtype) != jnp.dtype(e.dtype):
            raise ValueError(f"{what}: '{path}' has dtype {a.dtype}, the model expects {e.dtype}")
    extra = sorted(set(act_paths) - set(exp_paths))
    if extra:
        raise ValueError(f"{what}: unexpected entries the model does not have: {extra[:5]}")
