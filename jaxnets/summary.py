"""A Keras-style model summary: layer names, output shapes and parameter counts."""

from __future__ import annotations

import jax

from jaxnets.core import Layer, SpecLike, as_spec, count_params, record_init


def _shape_str(spec) -> str:
    if isinstance(spec, (tuple, list)):
        return ", ".join(_shape_str(s) for s in spec)
    return str(tuple(spec.shape))


def summary(model: Layer, input_spec: SpecLike, *, print_fn=print) -> str:
    """Print (and return) a table of every layer: path, type, output shape, trainable
    parameters and state (non-trainable) entries, with totals. Shapes only: no weights
    are allocated and nothing runs on data.

    Example:
        >>> import jaxnets as jn
        >>> text = jn.summary(jn.serial(jn.Dense(4), jn.Relu()), (1, 3), print_fn=None)
        >>> "Total params: 16" in text
        True
    """
    spec = as_spec(input_spec)
    with record_init() as records:
        out_spec, params, state = jax.eval_shape(lambda k: model.init(k, spec), jax.random.key(0))
    n_params, n_state = count_params(params), count_params(state)
    rows = [("Layer", "Type", "Output shape", "Params", "State")]
    for r in records:
        if r is None:
            continue
        indent = "  " * r.path.count("/")
        name = indent + r.path.rsplit("/", 1)[-1]
        rows.append(
            (name, r.kind, _shape_str(r.output_spec), f"{r.param_count:,}", f"{r.state_count:,}")
        )
    if len(rows) == 1:  # a single leaf layer
        rows.append(
            (
                model.name or model.kind.lower(),
                model.kind,
                _shape_str(out_spec),
                f"{n_params:,}",
                f"{n_state:,}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    line = "-" * (sum(widths) + 8)

    def fmt(row):
        left = [row[i].ljust(widths[i]) for i in range(3)]
        right = [row[i].rjust(widths[i]) for i in range(3, 5)]
        return "  ".join(left + right)

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
