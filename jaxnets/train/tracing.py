"""Abstract traces for the train step: whether the objectives use the key, the shapes of
the train state, and the message when a state does not fit the compiled one."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax
from jax.extend.core import Var

from jaxnets.core import Layer, check_tree_matches
from jaxnets.train.objective import Update, check_output, part_key
from jaxnets.train.update import _trainable


def model_uses_key(model: Layer, params, state, inputs) -> bool:
    """Whether the model's training-mode output depends on its PRNG key.

    Traces ``apply`` once on abstract values and follows the key through the graph.

    Args:
      model: the network.
      params: its parameters (arrays or ``jax.ShapeDtypeStruct`` leaves).
      state: its state.
      inputs: a batch of inputs.

    Returns:
      True when some output depends on the key.
    """

    def objective(params, state, batch, *, key, train):
        y, new_state = model.apply(params, state, batch, key=key, train=train)
        return jnp.zeros(()), (new_state, {"y": jnp.sum(y)})

    update = Update(objective, optax.identity())
    return _key_reaches_outputs(_trace_objectives([update], params, state, inputs))


def _trace_objectives(updates: Sequence[Update], params, state, batch):
    """The jaxpr of the objectives in training mode, run in order on abstract values
    (without derivatives); its first input is the key's data."""
    key_data = jax.random.key_data(jax.random.key(0))

    def run(key_data, params, state, batch):
        key = jax.random.wrap_key_data(key_data)
        outs = []
        for update in updates:
            _trainable(update, params, "train step")
            out = update.objective(params, state, batch, key=part_key(key, update.part), train=True)
            loss, state, metrics = check_output(update.name, out, state)
            outs.append((loss, state, metrics))
        return outs

    return jax.make_jaxpr(run)(key_data, *_abstract((params, state, batch))).jaxpr


def _abstract(tree):
    """The shapes and dtypes of ``tree``'s arrays, as ``jax.ShapeDtypeStruct`` leaves."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), tree)


def _key_reaches_outputs(jaxpr) -> bool:
    tainted = {jaxpr.invars[0]}
    for eqn in jaxpr.eqns:
        if any(isinstance(v, Var) and v in tainted for v in eqn.invars):
            tainted.update(eqn.outvars)
    return any(isinstance(v, Var) and v in tainted for v in jaxpr.outvars)


def _named(tree) -> dict:
    """``(params, state, opt_state)`` as a dict, so that messages name ``params/...``."""
    return dict(zip(("params", "state", "opt_state"), tree, strict=True))


def _mismatch(specs: dict, tree, what: str) -> ValueError:
    """The error for a ``(params, state, opt_state)`` that does not have the structure of
    ``specs``: the first missing or unexpected entry, as checkpoints and ``apply`` name
    them (:func:`jaxnets.core.check_tree_matches`)."""
    try:
        check_tree_matches(specs, _named(tree), what)
    except ValueError as error:
        return error
    return ValueError(
        f"{what}: expected the structure {jax.tree.structure(specs)}, "
        f"got {jax.tree.structure(_named(tree))}"
    )
