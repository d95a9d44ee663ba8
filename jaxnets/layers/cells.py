"""Recurrent cells: one step of SimpleRNN, LSTM and GRU, with fused gate weights.

A :class:`Cell`'s weights are stored fused, one matrix for all gates (``kernel (in, G*H)``,
``recurrent_kernel (H, G*H)``, as Keras); ``docs/recurrent.md`` gives the gate layouts and
the mapping to flax's cells. :func:`jaxnets.RNN` runs a cell over time.

Example (a cell's fused weights and an LSTM's two-part carry):
    >>> import jax, jaxnets as jn
    >>> cell = jn.LSTM(3)
    >>> {k: v.shape for k, v in cell.init(jax.random.key(0), 2).items()}
    {'kernel': (2, 12), 'recurrent_kernel': (3, 12), 'bias': (12,)}
    >>> sorted(cell.initial_carry((4,)))
    ['c', 'h']
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxnets import _impl
from jaxnets.core.arguments import count, flag, number
from jaxnets.layers import _checks
from jaxnets.layers._checks import initializer, optional_flag, resolve
from jaxnets.layers.gated_cell import Carry, Cell, check_cell, gated_cell, per_gate

__all__ = ["GRU", "LSTM", "Carry", "Cell", "SimpleRNN", "check_cell"]

Array = jax.Array
Initializer = Callable[..., Array]

_impl.define_op("lstm_sequence", None, layer="LSTM")


def _check_cell(kind: str, features, inits: dict, dtype, fused, use_bias) -> int:
    """Check a cell constructor's shared arguments; returns ``features`` as an int."""
    features = count(kind, "features", features)
    for what, init in inits.items():
        initializer(kind, what, init, optional=what != "bias_init")
    _checks.param_dtype(kind, dtype)
    optional_flag(kind, "fused", fused)
    flag(kind, "use_bias", use_bias)
    return features


def SimpleRNN(
    features: int,
    *,
    activation: str | Callable = "tanh",
    use_bias: bool = True,
    kernel_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
    param_dtype=jnp.float32,
    fused: bool | None = None,
) -> Cell:
    """The Elman cell ``h' = activation(x @ kernel + h @ recurrent_kernel + bias)``.

    Args:
      features: the size ``H`` of the carry and output.
      activation: the nonlinearity, a name ("tanh") or a function.
      use_bias: learn ``bias`` (False: no bias, as Keras's ``use_bias=False``).
      kernel_init: the input kernel's initialiser (default Glorot uniform).
      recurrent_init: the recurrent kernel's initialiser (default orthogonal).
      bias_init: the bias initialiser (default zeros).
      param_dtype: the dtype of the params.
      fused: True: the input product of every step runs once before the time loop; False:
        one product per step; None: False when the params live on the CPU, else True.

    Returns:
      The cell (run it with :func:`jaxnets.RNN`); its params are ``kernel`` (in, H),
      ``recurrent_kernel`` (H, H) and ``bias`` (H,), and its carry is ``{"h"}``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> cell = jn.SimpleRNN(3)
        >>> params = cell.init(jax.random.key(0), 2)
        >>> carry, y = cell(params, cell.initial_carry((4,)), jnp.ones((4, 2)))
        >>> y.shape, sorted(carry)
        ((4, 3), ['h'])
    """
    kind = "SimpleRNN"
    inits = {"kernel_init": kernel_init, "recurrent_init": recurrent_init, "bias_init": bias_init}
    features = _check_cell(kind, features, inits, param_dtype, fused, use_bias)
    act = resolve(kind, activation)
    kernel_init = kernel_init or jax.nn.initializers.glorot_uniform()
    recurrent_init = recurrent_init or jax.nn.initializers.orthogonal()

    def init(key, in_features):
        k1, k2, k3 = jax.random.split(key, 3)
        params = {
            "kernel": kernel_init(k1, (in_features, features), param_dtype),
            "recurrent_kernel": recurrent_init(k2, (features, features), param_dtype),
        }
        if use_bias:
            params["bias"] = bias_init(k3, (features,), param_dtype)
        return params

    def combine(carry, zx, zh, late_product):
        h = act(zx[0] + zh[0])
        return {"h": h}, h

    return gated_cell(
        kind,
        1,
        features,
        init,
        combine,
        ("h",),
        recurrent_bias=False,
        use_bias=use_bias,
        fused=fused,
    )


def LSTM(
    features: int,
    *,
    forget_bias: float = 1.0,
    activation: str | Callable = "tanh",
    recurrent_activation: str | Callable = "sigmoid",
    use_bias: bool = True,
    kernel_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
    param_dtype=jnp.float32,
    fused: bool | None = None,
    impl: str = "auto",
) -> Cell:
    """The long short-term memory cell (Hochreiter & Schmidhuber 1997), gates ``i, f, g, o``.

    ``z = x @ kernel + h @ recurrent_kernel + bias``, split in four: ``i, f, o =
    recurrent_activation(.)``, ``g = activation(.)``; ``c' = f * c + i * g``;
    ``h' = o * activation(c')`` (by default sigmoid and tanh). The forget-gate bias starts
    at ``forget_bias``. ``docs/recurrent.md`` maps the params to flax's per-gate ones.

    Args:
      features: the size ``H`` of the carry and output.
      forget_bias: the forget gate's initial bias.
      activation: the cell input's and output's nonlinearity (Keras's ``activation``).
      recurrent_activation: the gates' nonlinearity (Keras's ``recurrent_activation``).
      use_bias: learn ``bias`` (False: no bias and no forget bias).
      kernel_init: the input kernel's initialiser (default Glorot uniform).
      recurrent_init: the initialiser of each gate's recurrent block (default orthogonal).
      bias_init: the bias initialiser (the forget bias is added to it).
      param_dtype: the dtype of the params.
      fused: the scanned step's form (see :func:`jaxnets.layers.gated_cell.gated_cell`);
        None chooses by platform.
      impl: how a whole unpadded sequence runs: "auto", "reference" (scan the step),
        "chunked" (a hand-written backward pass, which "auto" picks on the CPU under
        reverse-mode differentiation) or "chunked_forward" (``docs/implementations.md``);
        those two need the default activations and a bias.

    Returns:
      The cell (run it with :func:`jaxnets.RNN`).

    Example:
        >>> import jax, jaxnets as jn
        >>> params = jn.LSTM(2).init(jax.random.key(0), 3)
        >>> params["bias"].tolist()
        [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    """
    kind = "LSTM"
    inits = {"kernel_init": kernel_init, "recurrent_init": recurrent_init, "bias_init": bias_init}
    features = _check_cell(kind, features, inits, param_dtype, fused, use_bias)
    forget_bias = number(kind, "forget_bias", forget_bias)
    _impl.check_impl("lstm_sequence", impl)
    act = resolve(kind, activation)
    gate = resolve(kind, recurrent_activation)
    standard = activation == "tanh" and recurrent_activation == "sigmoid" and use_bias
    if not standard and impl not in ("auto", "reference"):
        raise ValueError(
            f"{kind}: impl={impl!r} needs activation='tanh', recurrent_activation='sigmoid' "
            f"and use_bias=True; use impl='auto' or 'reference'"
        )
    kernel_init = kernel_init or jax.nn.initializers.glorot_uniform()
    recurrent_init = per_gate(recurrent_init or jax.nn.initializers.orthogonal(), 4)
    H = features  # noqa: N806

    def init(key, in_features):
        k1, k2, k3 = jax.random.split(key, 3)
        params = {
            "kernel": kernel_init(k1, (in_features, 4 * H), param_dtype),
            "recurrent_kernel": recurrent_init(k2, (H, 4 * H), param_dtype),
        }
        if use_bias:
            bias = bias_init(k3, (4 * H,), param_dtype)
            params["bias"] = bias.at[H : 2 * H].add(jnp.asarray(forget_bias, param_dtype))
        return params

    def combine(carry, zx, zh, late_product):
        i, f, g, o = (a + b for a, b in zip(zx, zh, strict=True))
        c = gate(f) * carry["c"] + gate(i) * act(g)
        h = gate(o) * act(c)
        return {"c": c, "h": h}, h

    return gated_cell(
        kind,
        4,
        H,
        init,
        combine,
        ("c", "h"),
        recurrent_bias=False,
        use_bias=use_bias,
        fused=fused,
        op="lstm_sequence" if standard else None,
        impl=impl,
    )


def GRU(
    features: int,
    *,
    reset_after: bool = True,
    activation: str | Callable = "tanh",
    recurrent_activation: str | Callable = "sigmoid",
    use_bias: bool = True,
    kernel_init: Initializer | None = None,
    recurrent_init: Initializer | None = None,
    bias_init: Initializer = jax.nn.initializers.zeros,
    param_dtype=jnp.float32,
    fused: bool | None = None,
) -> Cell:
    """The gated recurrent unit (Cho et al. 2014), gates ``z, r, n``.

    With ``reset_after=True`` (the default, Keras's and cuDNN's form):
    ``z = sigmoid(x W_z + b_z + h U_z + c_z)``, ``r`` alike,
    ``n = tanh(x W_n + b_n + r * (h U_n + c_n))``, ``h' = z * h + (1 - z) * n``, with
    ``W = kernel``, ``U = recurrent_kernel``, ``b = bias``, ``c = recurrent_bias``.
    With ``reset_after=False`` (the original paper's form) the reset gate applies before
    the product and there is no ``recurrent_bias``: ``z = sigmoid(x W_z + b_z + h U_z)``,
    ``n = tanh(x W_n + b_n + (r * h) U_n)``. ``sigmoid`` is ``recurrent_activation`` and
    ``tanh`` is ``activation``.

    Args:
      features: the size ``H`` of the carry and output.
      reset_after: the form above (Keras's ``reset_after``).
      activation: the candidate's nonlinearity (default tanh).
      recurrent_activation: the gates' nonlinearity (default sigmoid).
      use_bias: learn ``bias`` (and ``recurrent_bias`` when ``reset_after``).
      kernel_init: the input kernel's initialiser (default Glorot uniform).
      recurrent_init: the initialiser of each gate's recurrent block (default orthogonal).
      bias_init: the initialiser of both ``bias`` and ``recurrent_bias`` (default zeros).
      param_dtype: the dtype of the params.
      fused: True: one input product for all gates and steps before the time loop and one
        sliced recurrent product per step; False: one product per gate and step; None:
        False when the params live on the CPU, else True. The params are the same.

    Returns:
      The cell (run it with :func:`jaxnets.RNN`); its params are ``kernel`` (in, 3H),
      ``recurrent_kernel`` (H, 3H), ``bias`` (3H,) and ``recurrent_bias`` (3H,), gate
      blocks in the order ``z, r, n``; its carry is ``{"h"}``.

    Example:
        >>> import jax, jaxnets as jn
        >>> params = jn.GRU(4).init(jax.random.key(0), 3)
        >>> {k: v.shape for k, v in sorted(params.items())}
        {'bias': (12,), 'kernel': (3, 12), 'recurrent_bias': (12,), 'recurrent_kernel': (4, 12)}
    """
    kind = "GRU"
    inits = {"kernel_init": kernel_init, "recurrent_init": recurrent_init, "bias_init": bias_init}
    features = _check_cell(kind, features, inits, param_dtype, fused, use_bias)
    flag(kind, "reset_after", reset_after)
    act = resolve(kind, activation)
    gate = resolve(kind, recurrent_activation)
    kernel_init = kernel_init or jax.nn.initializers.glorot_uniform()
    recurrent_init = per_gate(recurrent_init or jax.nn.initializers.orthogonal(), 3)
    H = features  # noqa: N806

    def init(key, in_features):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        params = {
            "kernel": kernel_init(k1, (in_features, 3 * H), param_dtype),
            "recurrent_kernel": recurrent_init(k2, (H, 3 * H), param_dtype),
        }
        if use_bias:
            params["bias"] = bias_init(k3, (3 * H,), param_dtype)
            if reset_after:
                params["recurrent_bias"] = bias_init(k4, (3 * H,), param_dtype)
        return params

    def combine(carry, zx, zh, late_product):
        z = gate(zx[0] + zh[0])
        r = gate(zx[1] + zh[1])
        n = act(zx[2] + (r * zh[2] if reset_after else late_product(2, r * carry["h"])))
        h = z * carry["h"] + (1.0 - z) * n
        return {"h": h}, h

    return gated_cell(
        kind,
        3,
        H,
        init,
        combine,
        ("h",),
        recurrent_bias=reset_after,
        use_bias=use_bias,
        fused=fused,
        late=0 if reset_after else 1,
    )
