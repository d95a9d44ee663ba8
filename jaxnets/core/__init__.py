# ruff: noqa: F401  (this module re-exports the package's names)
"""The layer contract, shape specs, error reporting and the combinators.

A layer is a :class:`Layer`: a named tuple of two pure functions::

    layer.init(key, input_spec)             -> (output_spec, params, state)
    layer.apply(params, state, x, *, key, train) -> (y, new_state)

``params`` and ``state`` are nested dicts with readable names. Combinators
(:func:`serial`, :func:`parallel`, :func:`residual`, ...) build networks from
layers and are layers themselves.

The package has one concept a module: ``contract`` (the tuple, its types and errors),
``specs`` (shape specs and checks), ``children`` (keys, paths and records of a
combinator's children), ``combinators`` and ``trees`` (whole models and parameter trees).

Example:
    >>> import jax, jaxnets as jn
    >>> model = jn.serial(jn.Dense(8), jn.Relu(), jn.Dense(2))
    >>> out_spec, params, state = model.init(jax.random.key(0), (4, 3))
    >>> out_spec.shape, sorted(params)
    ((4, 2), ['dense_0', 'dense_1'])
    >>> y, state = model.apply(params, state, jax.numpy.ones((4, 3)), train=False)
    >>> y.shape
    (4, 2)
"""

from jaxnets.core.children import (
    _PATH,
    _RECORDER,
    InitRecord,
    _store,
    apply_child,
    apply_children,
    current_path,
    init_child,
    init_children,
    record_init,
    records_stacked,
)
from jaxnets.core.combinators import (
    Lambda,
    _as_named_layers,
    _check_tuple,
    branches,
    fan_in_concat,
    fan_in_sum,
    fan_out,
    named,
    parallel,
    residual,
    serial,
    stateless,
)
from jaxnets.core.contract import (
    ApplyFn,
    Array,
    InitFn,
    Layer,
    LayerError,
    LayerTypeError,
    Params,
    PyTree,
    Spec,
    SpecLike,
    State,
    _prefix_errors,
    layer_error,
    param,
)
from jaxnets.core.specs import (
    _is_shape,
    along_last,
    as_spec,
    check_floating,
    check_rank,
    infer_output,
    is_concrete,
    name_key,
)
from jaxnets.core.trees import (
    check_tree_matches,
    count_params,
    init_model,
    path_str,
    shape_tree,
)
