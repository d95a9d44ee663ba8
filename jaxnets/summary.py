"""A Keras-style model summary: layer names, output shapes, parameter counts and the
implementation each layer's ops run with in a train step."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets._impl import registry
from jaxnets._impl.choose import Choice, record_choices
from jaxnets.core import Layer, SpecLike, as_spec, count_params, record_init
from jaxnets.core.arguments import received
from jaxnets.core.children import check_layer


def _shape_str(spec) -> str:
    if isinstance(spec, (tuple, list)):
        return ", ".join(_shape_str(s) for s in spec)
    return str(tuple(spec.shape))


def _train_choices(model: Layer, spec, params, state) -> list[Choice]:
    """The implementations chosen, among several, when a train step on JAX's default
    device traces the model (``jax.grad`` of the summed outputs in training mode), traced
    abstractly. Ops with only their reference are left out."""

    def loss(p, s, x):
        y, _ = model.apply(p, s, x, key=jax.random.key(0), train=True)
        leaves = [a for a in jax.tree.leaves(y) if jnp.issubdtype(a.dtype, jnp.inexact)]
        return sum((jnp.sum(a.astype(jnp.float32)) for a in leaves), jnp.float32(0))

    with record_choices() as choices:
        jax.eval_shape(jax.grad(loss, allow_int=True), params, state, spec)
    return [c for c in choices if registry.get_op(c.op).others]


def _impl_by_row(paths: list[str], choices: list[Choice]) -> dict[str, str]:
    """Each row's implementations: a choice belongs to the deepest row whose path is a
    prefix of the choice's path, or to the model's own row when its path is "". A choice
    whose path matches no row was made by a re-trace outside its layer (a hand-written
    backward pass running the block again) and repeats one already attributed."""
    found: dict[str, list[str]] = {}
    for c in choices:
        owners = [p for p in paths if c.path == p or c.path.startswith(p + "/")]
        if not owners and c.path:
            continue
        owner = max(owners, key=len) if owners else ""
        names = found.setdefault(owner, [])
        if c.impl not in names:
            names.append(c.impl)
    return {path: ", ".join(names) for path, names in found.items()}


def summary(model: Layer, input_spec: SpecLike, *, print_fn=print) -> str:
    """Print (and return) a table of every layer: path, type, output shape, trainable
    parameters and state (non-trainable) entries, with totals. Shapes only: no weights
    are allocated and nothing runs on data.

    When the model holds ops with several implementations (``BatchNorm``, ``MaxPool``,
    ``LSTM``, ``repeat``: see docs/implementations.md), an ``Impl`` column names the one
    each layer runs with in a train step on JAX's default device (``impl="auto"``
    resolved, or the one named).

    Args:
      model: the model.
      input_spec: the input's shape with the batch dimension, a ``jax.ShapeDtypeStruct``,
        or a tuple of them for several inputs.
      print_fn: called with the table (None: only return it).

    Returns:
      The table as text.

    Example:
        >>> import jaxnets as jn
        >>> text = jn.summary(jn.serial(jn.Dense(4), jn.Relu()), (1, 3), print_fn=None)
        >>> "Total params: 16" in text
        True
    """
    check_layer("summary", "model", model)
    if print_fn is not None and not callable(print_fn):
        raise TypeError(f"summary: print_fn must be callable or None, got {received(print_fn)}")
    spec = as_spec(input_spec)
    with record_init() as records:
        out_spec, params, state = jax.eval_shape(lambda k: model.init(k, spec), jax.random.key(0))
    n_params, n_state = count_params(params), count_params(state)
    listed = [r for r in records if r is not None]
    impls = _impl_by_row([r.path for r in listed], _train_choices(model, spec, params, state))
    rows = [("Layer", "Type", "Output shape", "Params", "State", "Impl")]
    for r in listed:
        indent = "  " * r.path.count("/")
        name = indent + r.path.rsplit("/", 1)[-1]
        counts = (f"{r.param_count:,}", f"{r.state_count:,}")
        rows.append((name, r.kind, _shape_str(r.output_spec), *counts, impls.get(r.path, "")))
    if len(rows) == 1 or impls.get(""):  # a single leaf layer, or one choosing for itself
        name = model.name or model.kind.lower()
        counts = (f"{n_params:,}", f"{n_state:,}")
        own = (name, model.kind, _shape_str(out_spec), *counts, impls.get("", ""))
        rows = [rows[0], own] + [("  " + r[0], *r[1:]) for r in rows[1:]]
    columns = 6 if any(row[5] for row in rows[1:]) else 5
    widths = [max(len(row[i]) for row in rows) for i in range(columns)]
    line = "-" * (sum(widths) + 2 * (columns - 1))

    def fmt(row):
        left = [row[i].ljust(widths[i]) for i in range(3)]
        right = [row[i].rjust(widths[i]) for i in range(3, 5)]
        impl = [row[i].ljust(widths[i]) for i in range(5, columns)]
        return "  ".join(left + right + impl).rstrip()

    title = f"Model: {model.name or model.kind}  input {_shape_str(spec)} -> {_shape_str(out_spec)}"
    lines = [title, line, fmt(rows[0]), line, *(fmt(r) for r in rows[1:]), line]
    lines += [
        f"Total params: {n_params + n_state:,}",
        f"Trainable params: {n_params:,}",
        f"Non-trainable params (state): {n_state:,}",
    ]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text
